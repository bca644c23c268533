//! Guards on the docs and the template where a drift is cheap to catch: every repository path
//! README.md and docs/ name exists; every command line they show for `local-api`, `keys` and
//! the bench parses with the tool's own clap parser; the gateway's own problem answers in
//! `template.yaml` say what the API's own problems say for the same code and status.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use clap::Parser;
use edge::error::ApiError;
use profiles_tests::repo_path;
use serde_json::Value;

/// README.md, CHANGELOG.md and every page under docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![repo_path("README.md"), repo_path("CHANGELOG.md")];
    for entry in std::fs::read_dir(repo_path("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            paths.push(path);
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (p, text)
        })
        .collect()
}

/// The repository's top-level entries a path in the docs can start with.
fn top_level() -> Vec<String> {
    std::fs::read_dir(repo_path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !matches!(n.as_str(), ".git" | "target" | ".local" | ".aws-sam"))
        .collect()
}

/// Every run of path characters in `text` that starts at a word boundary with a top-level
/// entry of the repository (`shared/src/store/`, `template.yaml`), trailing sentence
/// punctuation removed; a placeholder (`functions/<name>/`) ends the run before it.
fn repository_paths(text: &str, top: &[String]) -> Vec<String> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-');
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !is_path_char(chars[i]) || (i > 0 && (is_path_char(chars[i - 1]) || chars[i - 1] == ':'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_path_char(chars[i]) {
            i += 1;
        }
        let run: String = chars[start..i].iter().collect();
        let run = run.trim_end_matches(['.', ',']);
        let first = run.split('/').next().unwrap_or_default();
        let names_entry = top.iter().any(|t| t == first);
        // A bare word that is also a folder's name (`shared`, `keys`) is prose, not a path.
        if names_entry && (run.contains('/') || first.contains('.')) {
            out.push(run.to_owned());
        }
    }
    out
}

/// Relative targets of markdown links (`[text](docs/api.md)`), less any `#anchor`.
fn link_targets(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|t| t.split('#').next().unwrap_or_default().to_owned())
        .filter(|t| !t.is_empty() && !t.contains("://") && !t.starts_with("mailto:"))
        .collect()
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    let top = top_level();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (page, text) in pages() {
        let dir = page.parent().unwrap().to_owned();
        for path in repository_paths(&text, &top) {
            checked += 1;
            if !repo_path(&path).exists() {
                missing.push(format!("{}: {path}", page.display()));
            }
        }
        for target in link_targets(&text) {
            checked += 1;
            if !dir.join(&target).exists() {
                missing.push(format!("{}: link {target}", page.display()));
            }
        }
    }
    assert!(checked > 50, "the pages name paths: {checked} checked");
    assert!(
        missing.is_empty(),
        "named but missing:\n{}",
        missing.join("\n")
    );
}

/// Each command line the pages show for `tool` (`cargo run -p <tool> [cargo flags] [-- args]`),
/// as its arguments after `--`: from fenced code blocks (continuation lines joined) and from
/// inline code spans, up to the first shell operator or comment.
fn command_lines(tool: &str) -> Vec<(String, Vec<String>)> {
    let needle = format!("cargo run -p {tool}");
    let mut out = Vec::new();
    for (page, text) in pages() {
        let joined = text.replace("\\\n", " ");
        let mut fenced = false;
        for line in joined.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            let candidates: Vec<&str> = if fenced {
                vec![line]
            } else {
                line.split('`').skip(1).step_by(2).collect()
            };
            for candidate in candidates {
                let Some(at) = candidate.find(&needle) else {
                    continue;
                };
                let rest = &candidate[at + needle.len()..];
                // `cargo run -p keys-other` is another package.
                if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    continue;
                }
                let words = shell_words(rest);
                let args = match words.iter().position(|w| w == "--") {
                    Some(i) => words[i + 1..].to_vec(),
                    None => Vec::new(),
                };
                out.push((format!("{}: {}", page.display(), candidate.trim()), args));
            }
        }
    }
    out
}

/// A command's words as a POSIX shell splits them (quotes removed), up to `|`, `&&`, `;`,
/// `>`, `)` or a `#` comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            // A placeholder (`<TableName>`) is a word, not a redirection.
            '<' => {
                in_word = true;
                word.push(c);
                for p in chars.by_ref() {
                    word.push(p);
                    if p == '>' {
                        break;
                    }
                }
            }
            '|' | ';' | '>' | ')' | '&' => break,
            '#' if !in_word => break,
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn every_command_line_the_docs_show_parses_with_the_tools_own_parser() {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for tool in ["local-api", "keys", "bench"] {
        let lines = command_lines(tool);
        counts.push((tool, lines.len()));
        for (where_, args) in lines {
            let parsed = match tool {
                "local-api" => {
                    let argv = std::iter::once("local-api".to_owned()).chain(args);
                    local_api::cli::Cli::try_parse_from(argv).map(drop)
                }
                "keys" => {
                    let argv = std::iter::once("keys".to_owned()).chain(args).collect();
                    keys::cli::Args::try_parse_from(keys::cli::spelled_for_clap(argv)).map(drop)
                }
                _ => {
                    let argv = std::iter::once("bench".to_owned()).chain(args);
                    bench::cli::Cli::try_parse_from(argv).map(drop)
                }
            };
            match parsed {
                Ok(()) => {}
                // `--help` and `--version` parse: clap answers them by "failing" to print.
                Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp) => {}
                Err(e) => failures.push(format!(
                    "{where_}\n  {}",
                    e.to_string().lines().next().unwrap_or_default()
                )),
            }
        }
    }
    for (tool, n) in &counts {
        assert!(
            *n >= 1,
            "the docs show no command line for {tool}: {counts:?}"
        );
    }
    assert!(
        failures.is_empty(),
        "command lines that do not parse:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_path_finder_sees_paths_and_leaves_prose_and_urls_alone() {
    let top: Vec<String> = ["shared", "docs", "template.yaml", "local-api"]
        .map(String::from)
        .to_vec();
    let text = "See `shared/src/store/schema.rs`, [api](docs/api.md) and template.yaml. The shared \
        crate; https://x.test/docs/api.md; functions/<name>/; `local-api/src/runtime/`: /profiles/{id}";
    assert_eq!(
        repository_paths(text, &top),
        [
            "shared/src/store/schema.rs",
            "docs/api.md",
            "template.yaml",
            "local-api/src/runtime/"
        ]
    );
    assert_eq!(
        link_targets("[a](docs/api.md#x) [b](https://x.test/y)"),
        ["docs/api.md"]
    );
    assert_eq!(
        shell_words("cargo run -p keys -- --table <T> create --name \"a b\" | tee x # c"),
        [
            "cargo", "run", "-p", "keys", "--", "--table", "<T>", "create", "--name", "a b"
        ]
    );
}

/// The gateway's own answers (`GatewayResponses`) are the API's problems too: the same title
/// for a status as `edge::http::title` gives, and where the API has a problem with the same
/// code, the same status.
#[test]
fn the_gateways_problems_agree_with_the_apis_codes_titles_and_statuses() {
    // What the API itself answers, code → status, from its one mapping.
    let api: Vec<(String, u16)> = [
        ApiError::Unauthorized,
        ApiError::NotFound("profile"),
        ApiError::PayloadTooLarge("x".into()),
        ApiError::RateLimited { retry_after: 1 },
        ApiError::Unavailable {
            retry_after: 1,
            cause: "x".into(),
        },
        ApiError::Internal("x".into()),
    ]
    .iter()
    .map(|e| {
        let r = edge::http::problem(e, "t");
        let lambda_http::Body::Text(text) = r.body() else {
            panic!("a problem has a body")
        };
        let body: Value = serde_json::from_str(text).unwrap();
        (
            body["code"].as_str().unwrap().to_owned(),
            r.status().as_u16(),
        )
    })
    .collect();
    let raw = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&raw).unwrap();
    let responses = doc["Resources"]["ProfilesApi"]["Properties"]["GatewayResponses"]
        .as_mapping()
        .unwrap();
    assert!(responses.len() >= 10);
    for (kind, r) in responses {
        let kind = kind.as_str().unwrap();
        let template = r["ResponseTemplates"]["application/json"].as_str().unwrap();
        let text = template
            .replace("$context.requestId", "trace")
            .replace("$context.error.messageString", "\"message\"");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let code = body["code"].as_str().unwrap();
        assert_eq!(body["type"], "about:blank", "{kind}");
        assert_eq!(body["trace_id"], "trace", "{kind}");
        let Some(status) = r["StatusCode"].as_u64() else {
            // DEFAULT_4XX keeps the status of whatever it stands in for.
            assert_eq!(code, "request_refused", "{kind}");
            continue;
        };
        assert_eq!(
            body["status"], status,
            "{kind}: the body's status is the answer's"
        );
        let status = lambda_http::http::StatusCode::from_u16(status as u16).unwrap();
        assert_eq!(
            body["title"],
            edge::http::title(status),
            "{kind}: the API's title"
        );
        if let Some((_, api_status)) = api.iter().find(|(c, _)| c == code) {
            assert_eq!(
                *api_status,
                status.as_u16(),
                "{kind}: {code} is {api_status} in the API"
            );
        }
    }
}

/// The layering the compiler holds (docs/design.md): the core, process-photo (S3's events),
/// publish-events (the table's stream) and the `keys` command have no HTTP framework in
/// their dependency tree; the HTTP functions do, through the edge.
#[test]
fn the_core_the_event_functions_and_keys_depend_on_no_http_framework() {
    let tree = |package: &str| {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "tree",
                "--locked",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
            ])
            .arg(package)
            .current_dir(repo_path(""))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for package in [
        "shared",
        "process-photo",
        "publish-events",
        "run-jobs",
        "keys",
    ] {
        let tree = tree(package);
        assert!(
            tree.contains("aws-sdk-dynamodb"),
            "{package}: the tree is read"
        );
        assert!(
            !tree.contains("lambda_http"),
            "{package} depends on lambda_http"
        );
    }
    assert!(
        tree("get-profile").contains("lambda_http"),
        "the check can fail"
    );
}

/// The environment the template gives the functions is exactly what the configuration
/// loader knows as the template's (`shared::config::env::FROM_TEMPLATE`): a variable added on
/// one side only, or misspelt on either, fails here.
#[test]
fn the_template_sets_exactly_the_variables_the_loader_reads_from_it() {
    use std::collections::BTreeSet;
    let raw = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&raw).unwrap();
    let names = |v: &yaml_serde::Value| -> Vec<String> {
        v["Environment"]["Variables"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str().unwrap().to_owned())
            .collect()
    };
    let mut set: BTreeSet<String> = names(&doc["Globals"]["Function"]).into_iter().collect();
    for (_, r) in doc["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() == Some("AWS::Serverless::Function") {
            set.extend(names(&r["Properties"]));
        }
    }
    let known: BTreeSet<String> = shared::config::env::FROM_TEMPLATE
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(set, known);
}
