//! Unit tests of the settings: defaults, parsing and the errors bad values give.

use super::*;

#[test]
fn database_defaults_to_embedded_sqlite() {
    assert_eq!(
        Config::default().database().unwrap(),
        DatabaseUrl::Sqlite(DEFAULT_DATABASE_URL.into())
    );
}

#[test]
fn upstream_db_variables_build_a_postgres_url() {
    let cfg = Config {
        db_host: Some("db.internal".into()),
        db_port: Some(6543),
        db_username: Some("svc".into()),
        db_password: Some("p@ss/word".into()),
        db_database: Some("assess".into()),
        ..Config::default()
    };
    let DatabaseUrl::Postgres(url) = cfg.database().unwrap() else {
        panic!("expected postgres")
    };
    assert_eq!(
        url.expose(),
        "postgres://svc:p%40ss%2Fword@db.internal:6543/assess"
    );
    let parsed = url::Url::parse(url.expose()).unwrap();
    assert_eq!(
        percent_decode(parsed.password().unwrap()),
        "p@ss/word",
        "password survives the round trip"
    );
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

#[test]
fn database_url_wins_over_db_variables() {
    let cfg = Config {
        database_url: Some("postgres://a@b/c".into()),
        db_host: Some("ignored".into()),
        ..Config::default()
    };
    assert_eq!(
        cfg.database().unwrap(),
        DatabaseUrl::Postgres("postgres://a@b/c".into())
    );
}

#[test]
fn unknown_database_scheme_names_the_variable() {
    let err = Config::with_database("mysql://x").database().unwrap_err();
    assert_eq!(err.var, "DATABASE_URL");
}

#[test]
fn prefix_is_normalised_and_checked() {
    let cfg = Config {
        assessment_prefix: "/api/v2/".into(),
        ..Config::default()
    };
    assert_eq!(cfg.prefix().unwrap(), "api/v2");
    let bad = Config {
        assessment_prefix: "a b".into(),
        ..Config::default()
    };
    assert_eq!(bad.prefix().unwrap_err().var, "ASSESSMENT_PREFIX");
}

#[test]
fn cors_origins_parse() {
    assert!(Config::default().cors_origin_list().unwrap().is_none());
    let cfg = Config {
        cors_origins: "https://a.example, http://localhost:3000".into(),
        ..Config::default()
    };
    assert_eq!(cfg.cors_origin_list().unwrap().unwrap().len(), 2);
    let bad = Config {
        cors_origins: "ftp://x".into(),
        ..Config::default()
    };
    assert_eq!(bad.cors_origin_list().unwrap_err().var, "CORS_ORIGINS");
}

#[test]
fn debug_shows_no_secret() {
    let secrets = [
        "url-password-1",
        "db-password-2",
        "jwt-secret-3-long-enough-for-hs256-signing",
        "external-key-4",
        "analytics-key-5",
        "notification-key-6",
        "lms-key-7",
        "whsec_c2lnbmluZy1zZWNyZXQtOA==",
    ];
    let cfg = Config {
        database_url: Some(format!("postgres://svc:{}@db.internal/x", secrets[0]).into()),
        db_password: Some(secrets[1].into()),
        jwt_secret: Some(secrets[2].into()),
        external_service_api_key: Some(secrets[3].into()),
        analytics_service_api_key: Some(secrets[4].into()),
        notification_service_api_key: Some(secrets[5].into()),
        lms_api_key: Some(secrets[6].into()),
        webhook_signing_secret: Some(secrets[7].into()),
        ..Config::default()
    };
    let from_db_vars = Config {
        database_url: None,
        db_host: Some("db.internal".into()),
        ..cfg.clone()
    };
    let shown = [
        format!("{cfg:?}"),
        format!("{cfg:#?}"),
        format!("{:?}", cfg.database().unwrap()),
        format!("{from_db_vars:?}"),
        format!("{:?}", from_db_vars.database().unwrap()),
    ]
    .join("\n");
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} shows in {shown}");
    }
    assert!(!shown.contains("c2lnbmluZy1zZWNyZXQtOA"), "{shown}");
    assert!(shown.contains("[redacted]"));
    assert!(shown.contains("db.internal"), "the rest still shows");
}

#[test]
fn redacted_url_hides_password() {
    let u = DatabaseUrl::Postgres("postgres://u:secret@h:5432/d".into());
    assert!(!u.redacted().contains("secret"));
}
