//! Where the runner serves the API: under `/<stage>` as execute-api serves it, or at the
//! root as a custom domain does; how a request path splits into the base path and the API's
//! own path, and the URLs of API paths.

use crate::Server;
use crate::event::STAGE;
use crate::template::Route;

/// Where the API is served on the runner's host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mount {
    /// Under `/<stage>`, as API Gateway's default execute-api endpoint serves a REST API.
    #[default]
    Stage,
    /// At the root, as a custom domain with an empty base path mapping serves it.
    Root,
}

impl Server {
    /// The base path and the API's own path of a request path: under [`Mount::Stage`], the
    /// first segment is the stage (`/prod/profiles` → `/prod`, `/profiles`).
    pub(crate) fn split_path<'p>(&self, full: &'p str) -> (&'p str, &'p str) {
        if self.mount == Mount::Root {
            return ("", full);
        }
        let rest = full.strip_prefix('/').unwrap_or(full);
        match rest.find('/') {
            Some(at) => full.split_at(at + 1),
            None => (full, "/"),
        }
    }

    /// The stage a route is served under: its API's `StageName`.
    pub(crate) fn stage_of(&self, route: &Route) -> &str {
        route
            .api
            .as_deref()
            .and_then(|id| self.apis.get(id))
            .map_or(STAGE, |a| a.stage.as_str())
    }

    /// The URL of an API path (`/profiles/me`) on `origin`: under the stage of the API whose
    /// route matches it (the only API's when none does) under [`Mount::Stage`].
    pub fn url_of(&self, origin: &str, path: &str) -> String {
        if self.mount == Mount::Root {
            return format!("{origin}{path}");
        }
        let bare = path.split('?').next().unwrap_or(path);
        let stage = self
            .routes
            .iter()
            .find(|r| r.matches(bare).is_some())
            .map(|r| self.stage_of(r))
            .unwrap_or_else(|| self.only_api().map_or(STAGE, |a| a.stage.as_str()));
        format!("{origin}/{stage}{path}")
    }

    /// The base URL of the API on `origin` (`http://127.0.0.1:3000`): with its stage
    /// under [`Mount::Stage`] (the template's only API's, else SAM's implicit one's).
    pub fn api_url(&self, origin: &str) -> String {
        match self.mount {
            Mount::Root => origin.to_owned(),
            Mount::Stage => {
                let stage = self.only_api().map_or(STAGE, |a| a.stage.as_str());
                format!("{origin}/{stage}")
            }
        }
    }
}
