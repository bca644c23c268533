//! The runner's DynamoDB: dynoxide embedded (in memory, or in a file under the state
//! directory), or another engine named by URL; the template's table made on it when
//! missing; and, for an embedded one, its URL kept in the state directory for `keys --local`
//! while it runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shared::config::{Config, env};
use shared::localstate;

use crate::template::{Error, Template};
use crate::{Storage, TABLE};

/// An embedded engine's task: the sender that stops it, and its handle.
type EmbeddedTask = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// The engine the functions talk to.
pub struct Engine {
    /// Its URL: the functions' `DYNAMODB_ENDPOINT`.
    pub endpoint: String,
    pub table: String,
    /// Whether this start created the table.
    pub created_table: bool,
    /// Where the engine's URL was written for `keys --local`, if it was (embedded only).
    pub endpoint_file: Option<PathBuf>,
    /// Whether the runner started it (else it is one named by URL).
    pub embedded: bool,
    /// The embedded engine itself, for what the runner reads in process (its stream).
    pub db: Option<dynoxide::Database>,
    task: std::sync::Mutex<Option<EmbeddedTask>>,
}

impl Engine {
    /// Starts the embedded engine (or joins the one `storage` names), and writes its URL to
    /// the state directory for `keys --local`: an embedded one's, or none (a URL an earlier
    /// embedded engine left is removed, as it leads nowhere now).
    pub async fn start(storage: &Storage, state_dir: Option<&Path>) -> Result<Self, Error> {
        let db = match storage {
            Storage::Endpoint { .. } => None,
            Storage::File(file) => {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Some(dynoxide::Database::new(&file.to_string_lossy())?)
            }
            Storage::Memory => Some(dynoxide::Database::memory()?),
        };
        let (endpoint, table, embedded) = match (storage, &db) {
            (Storage::Endpoint { url, table }, _) => (url.clone(), table.clone(), None),
            (_, Some(db)) => {
                // A clone shares the engine (its handles are reference-counted).
                let (url, task) = serve(db.clone()).await?;
                (url, TABLE.to_owned(), Some(task))
            }
            (_, None) => return Err("no engine to serve".into()),
        };
        let endpoint_file = match state_dir {
            Some(dir) => {
                let file = dir.join(localstate::ENGINE_ENDPOINT);
                if embedded.is_some() {
                    std::fs::create_dir_all(dir)?;
                    std::fs::write(&file, format!("{endpoint}\n"))?;
                    Some(file)
                } else {
                    let _ = std::fs::remove_file(&file);
                    None
                }
            }
            None => None,
        };
        Ok(Self {
            endpoint,
            table,
            created_table: false,
            endpoint_file,
            embedded: embedded.is_some(),
            db,
            task: std::sync::Mutex::new(embedded),
        })
    }

    /// The configuration a client of this engine needs, in `region`: for another engine,
    /// the credentials of the environment.
    pub fn config(&self, region: &str) -> Result<Config, Error> {
        let embedded = self.embedded;
        Ok(Config::from_lookup(|k| match k {
            env::TABLE_NAME => Some(self.table.clone()),
            env::DYNAMODB_ENDPOINT => Some(self.endpoint.clone()),
            env::AWS_REGION => Some(region.to_owned()),
            _ if env::AWS_CREDENTIALS.contains(&k) && !embedded => std::env::var(k).ok(),
            _ => None,
        })?)
    }

    /// Makes the template's table when the engine has none by this name.
    pub async fn ensure_table(
        &mut self,
        template: &Template,
        config: &Config,
    ) -> Result<(), Error> {
        let client = shared::store::dynamodb_client(config);
        self.created_table = template.ensure_table(&client, &self.table).await?;
        Ok(())
    }

    /// Stops an embedded engine (which closes its data file) and removes its URL's file.
    pub async fn stop(&self) {
        let embedded = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = embedded {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        // Its URL no longer leads anywhere (unless another runner wrote its own since).
        if let Some(file) = &self.endpoint_file
            && std::fs::read_to_string(file).is_ok_and(|url| url.trim() == self.endpoint)
        {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Serves `db` on a free port of 127.0.0.1 until told to stop.
async fn serve(db: dynoxide::Database) -> Result<(String, EmbeddedTask), Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = dynoxide::server::serve_with_shutdown(listener, db, shutdown).await {
            tracing::error!("embedded DynamoDB stopped: {e}");
        }
    });
    Ok((url, (stop, task)))
}
