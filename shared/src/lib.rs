//! The Profiles API's core, free of HTTP: ids (`ids`), scopes (`auth`), the validated model,
//! listing (sorts, filters, cursors), idempotency records, the store and its `StoreError`,
//! photos (the bucket's key scheme, the check of an upload, process-photo's work), bulk
//! imports and exports (`bulk`, run-jobs' work), API keys, and the configuration they need. Each module speaks its own error; the HTTP edge (the
//! `edge` crate) is the one place a failure becomes a status. Functions that answer no HTTP
//! request (process-photo, publish-events, run-jobs) and the `keys` command depend on this crate alone.

pub mod apikeys;
pub mod app;
pub mod auth;
pub mod budget;
pub mod bulk;
pub mod bus;
pub mod config;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod listing;
pub mod localstate;
pub mod logging;
pub mod model;
pub mod origins;
pub mod photo;
pub mod retry;
pub mod store;
pub mod validate;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Every `crate::<module>` a production file of the crate names (comments and the
    /// `#[cfg(test)]` module at its end left out), by the top-level module it belongs to.
    fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
        fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, files);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            let module = first.trim_end_matches(".rs").to_owned();
            if module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let production = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for line in production
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
            {
                for (i, _) in line.match_indices("crate::") {
                    let used: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !used.is_empty() && used != module {
                        graph.entry(module.clone()).or_default().insert(used);
                    }
                }
            }
        }
        graph
    }

    /// The crate's modules depend on each other without a cycle: each can be read, and
    /// changed, knowing only what is below it.
    #[test]
    fn the_modules_have_no_import_cycle() {
        let graph = module_graph();
        assert!(graph["apikeys"].contains("store"), "the graph is read");
        for start in graph.keys() {
            let mut seen = BTreeSet::new();
            let mut stack = vec![start.clone()];
            while let Some(m) = stack.pop() {
                for next in graph.get(&m).into_iter().flatten() {
                    assert_ne!(next, start, "{start} reaches itself through {m}: {graph:?}");
                    if seen.insert(next.clone()) {
                        stack.push(next.clone());
                    }
                }
            }
        }
    }
}
