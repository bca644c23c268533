//! The template as the local runner reads it, without serving it: parameter overrides and the
//! functions' settings, each route's API, authorizer and key requirement, and which route a
//! method and path select.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use shared::config::env;

use local_api::template::Template;
use profiles_tests::{json, repo_path};

use crate::local_api::{fault_template, template_with, yaml};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_specific_method_beats_any_on_the_same_resource() {
    let template = fault_template();
    let routes = template.routes().unwrap();
    let m = local_api::route(&routes, "GET", "/fault/x").unwrap();
    assert_eq!(m.route.function, "FaultFunction", "ANY serves GET");
    let m = local_api::route(&routes, "GET", "/profiles/create").unwrap();
    assert_eq!(m.route.function, "GetProfileFunction");
    let m = local_api::route(&routes, "POST", "/profiles/create").unwrap();
    assert_eq!(
        m.route.function, "CreateProfileFunction",
        "the literal alias beats {{profile_id}}"
    );
}

#[test]
fn parameter_overrides_must_name_template_parameters() {
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    let unknown = template
        .clone()
        .with_parameter_overrides(&[("JwtIssur".into(), "x".into())]);
    assert!(unknown.is_err(), "a misspelt parameter is an error");
    let template = template
        .with_parameter_overrides(&[("JwtIssuer".into(), "https://i.test".into())])
        .unwrap();
    // A distribution's domain resolves only where an S3 stands in for it.
    assert!(template.functions("t").is_err());
    let template = template.with_local("eu-west-1", Some("http://127.0.0.1:9"));
    let functions = template.functions("t").unwrap();
    let process = functions
        .iter()
        .find(|f| f.id == "ProcessPhotoFunction")
        .unwrap();
    let bucket = "profiles-local-123456789012-eu-west-1-photos";
    assert!(process.env.contains(&(
        env::PHOTO_BASE_URL.into(),
        format!("http://127.0.0.1:9/{bucket}/photos")
    )));
    assert!(
        process
            .env
            .contains(&(env::PHOTO_BUCKET.into(), bucket.into()))
    );
    assert_eq!(process.memory_mb, 512);
    let authorizer = functions
        .iter()
        .find(|f| f.id == "AuthorizerFunction")
        .unwrap();
    assert!(
        authorizer
            .env
            .contains(&(env::JWT_ISSUER.into(), "https://i.test".into()))
    );
    assert!(
        authorizer
            .env
            .contains(&(env::JWT_AUDIENCE.into(), String::new())),
        "the others at their defaults"
    );
    let api = &template.apis().unwrap()[0];
    assert_eq!(api.stage, "prod");
    let plans: Vec<(&str, Option<(u32, f64)>)> = api
        .plans
        .iter()
        .map(|p| (p.id.as_str(), p.throttle.map(|t| (t.burst, t.rate))))
        .collect();
    assert_eq!(
        plans,
        [
            ("ProfilesUsagePlan", Some((10, 2.5))),
            ("JwtCallersUsagePlan", None)
        ],
        "the JWT callers' plan has no throttle of its own"
    );
    assert!(api.gateway_responses.contains_key("THROTTLED"));
}

#[test]
fn a_routes_authorizer_and_key_come_from_its_api_and_its_event() {
    let template = template_with(|doc| {
        let events = &mut doc["Resources"]["GetProfileFunction"]["Properties"]["Events"];
        events["Open"] = yaml(json!({"Type": "Api", "Properties": {
            "RestApiId": {"Ref": "ProfilesApi"}, "Path": "/open", "Method": "get",
            "Auth": {"Authorizer": "NONE", "ApiKeyRequired": false},
        }}));
        events["Keyed"] = yaml(json!({"Type": "Api", "Properties": {
            "RestApiId": {"Ref": "ProfilesApi"}, "Path": "/keyed", "Method": "get",
            "Auth": {"Authorizer": "NONE"},
        }}));
        events["Implicit"] = yaml(json!({"Type": "Api", "Properties": {
            "Path": "/implicit", "Method": "get",
        }}));
    });
    let routes = template.routes().unwrap();
    let by_path = |p: &str| routes.iter().find(|r| r.resource == p).unwrap();
    let get = by_path("/profiles/{profile_id}");
    assert_eq!(get.api.as_deref(), Some("ProfilesApi"));
    assert_eq!(get.authorizer.as_deref(), Some("ProfilesAuthorizer"));
    assert!(get.api_key_required);
    let open = by_path("/open");
    assert_eq!(
        (open.authorizer.as_deref(), open.api_key_required),
        (None, false)
    );
    let keyed = by_path("/keyed");
    assert_eq!(
        (keyed.authorizer.as_deref(), keyed.api_key_required),
        (None, true)
    );
    let implicit = by_path("/implicit");
    assert_eq!(implicit.api, None);
    assert_eq!(
        (implicit.authorizer.as_deref(), implicit.api_key_required),
        (None, false)
    );
    assert!(
        template
            .served_binaries()
            .unwrap()
            .contains(&"authorizer".to_owned()),
        "the authorizer is built and run like the functions"
    );

    let unknown = template_with(|doc| {
        doc["Resources"]["GetProfileFunction"]["Properties"]["Events"]["Get"]["Properties"]["Auth"] =
            yaml(json!({"Authorizer": "Nobody"}));
    });
    let err = unknown.routes().unwrap_err().to_string();
    assert!(err.contains("Nobody"), "{err}");
}

/// The functions that write profiles and contacts, which `WriterReservedConcurrency` caps.
const WRITERS: [&str; 7] = [
    "CreateProfileFunction",
    "UpdateProfileFunction",
    "ReplaceProfileFunction",
    "DeleteProfileFunction",
    "CreateContactFunction",
    "UpdateContactFunction",
    "DeleteContactFunction",
];

/// Every function of `template.yaml` with `overrides`, as the runner reads it.
fn functions_with(overrides: &[(&str, &str)]) -> Vec<local_api::template::Function> {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Template::load(&repo_path("template.yaml"))
        .unwrap()
        .with_parameter_overrides(&overrides)
        .unwrap()
        .with_local("us-east-1", Some("http://127.0.0.1:9"))
        .functions("t")
        .unwrap()
}

/// Every function of `template.yaml` with `overrides`, and its reserved concurrency.
fn reserved(overrides: &[(&str, &str)]) -> Vec<(String, Option<u32>)> {
    functions_with(overrides)
        .into_iter()
        .map(|f| (f.id, f.reserved_concurrency))
        .collect()
}

/// `WriterReservedConcurrency` is -1 by default: its condition is false, `AWS::NoValue`, so
/// no function reserves anything. Overridden, the seven writers reserve its value and no
/// other function does; 0 is read as written (the runner then refuses to start:
/// local_api.rs).
#[test]
fn the_writers_reserved_concurrency_follows_its_parameter() {
    let default = reserved(&[]);
    assert_eq!(default.len(), 18);
    assert!(default.iter().all(|(_, r)| r.is_none()), "{default:?}");
    for value in [3u32, 0] {
        let text = value.to_string();
        let capped = reserved(&[("WriterReservedConcurrency", text.as_str())]);
        for (id, r) in &capped {
            let want = WRITERS.contains(&id.as_str()).then_some(value);
            assert_eq!(*r, want, "{id} with {value}");
        }
    }
    let template = Template::load(&repo_path("template.yaml")).unwrap();
    assert_eq!(
        template.reserved_concurrency_parameters("CreateProfileFunction"),
        ["WriterReservedConcurrency"]
    );
    assert!(
        template
            .reserved_concurrency_parameters("GetProfileFunction")
            .is_empty()
    );
}

/// `ReadProvisionedConcurrency` is 0 by default: its condition is false, the
/// `ProvisionedConcurrencyConfig` is `AWS::NoValue`, and no function keeps instances. Set,
/// the five readers keep that many and no other function any (the authorizer has no alias:
/// docs/deploy.md).
#[test]
fn the_readers_provisioned_concurrency_follows_its_parameter() {
    let provisioned = |overrides: &[(&str, &str)]| -> Vec<(String, u32)> {
        functions_with(overrides)
            .into_iter()
            .map(|f| (f.id, f.provisioned_concurrency))
            .collect()
    };
    let default = provisioned(&[]);
    assert_eq!(default.len(), 18);
    assert!(default.iter().all(|(_, n)| *n == 0), "{default:?}");
    let readers = [
        "GetProfileFunction",
        "ListProfilesFunction",
        "GetPrimaryProfileFunction",
        "ListContactsFunction",
        "GetContactFunction",
    ];
    let set = provisioned(&[("ReadProvisionedConcurrency", "3")]);
    for (id, n) in &set {
        let want = if readers.contains(&id.as_str()) { 3 } else { 0 };
        assert_eq!(*n, want, "{id}");
    }
}

/// Each function's `LoggingConfig` names its own log group; the format and level still come
/// from Globals (SAM merges the two maps). The template names its authorizer as the function
/// itself (`!GetAtt AuthorizerFunction.Arn`: docs/deploy.md says why it has no alias); one
/// named through its function's alias (`!Ref AuthorizerFunction.Alias`) is that function
/// too, and one named through an alias its function does not publish is refused.
#[test]
fn a_functions_logging_config_is_merged_over_globals_and_an_alias_is_its_function() {
    let template = Template::load(&repo_path("template.yaml"))
        .unwrap()
        .with_local("us-east-1", Some("http://127.0.0.1:9"));
    for f in template.functions("t").unwrap() {
        assert_eq!(
            (f.log_format.as_deref(), f.log_level.as_deref()),
            (Some("JSON"), Some("INFO")),
            "{}",
            f.id
        );
    }
    let api = &template.apis().unwrap()[0];
    assert_eq!(
        api.authorizers["ProfilesAuthorizer"].function,
        "AuthorizerFunction"
    );
    let through_alias = |published: bool| {
        template_with(|doc| {
            let auth = &mut doc["Resources"]["ProfilesApi"]["Properties"]["Auth"];
            auth["Authorizers"]["ProfilesAuthorizer"]["FunctionArn"] =
                yaml(json!({"Ref": "AuthorizerFunction.Alias"}));
            if published {
                doc["Resources"]["AuthorizerFunction"]["Properties"]["AutoPublishAlias"] =
                    yaml(json!("live"));
            }
        })
    };
    let aliased = through_alias(true);
    assert_eq!(
        aliased.apis().unwrap()[0].authorizers["ProfilesAuthorizer"].function,
        "AuthorizerFunction"
    );
    let err = through_alias(false).apis().unwrap_err().to_string();
    assert!(err.contains("has no AutoPublishAlias"), "{err}");
}
