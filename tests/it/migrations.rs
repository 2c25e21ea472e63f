//! The two migration folders must agree, and migrating is idempotent.

use std::collections::BTreeMap;

use assessment_service::store::{POSTGRES_MIGRATOR, SQLITE_MIGRATOR};

use crate::harness::*;

fn folder_versions(dialect: &str) -> BTreeMap<i64, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql"))
        .map(|n| {
            let (version, rest) = n.split_once('_').expect("VERSION_description.sql");
            (version.parse().expect("numeric version"), rest.to_string())
        })
        .collect()
}

#[test]
fn sqlite_and_postgres_folders_have_the_same_versions() {
    let sqlite = folder_versions("sqlite");
    let postgres = folder_versions("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres must carry the same versions and names"
    );
}

#[test]
fn embedded_migrators_agree() {
    let s: Vec<(i64, String)> = SQLITE_MIGRATOR
        .iter()
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    let p: Vec<(i64, String)> = POSTGRES_MIGRATOR
        .iter()
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    assert_eq!(s, p);
}

#[tokio::test]
async fn migrating_twice_is_a_no_op() {
    let db = TestDb::fresh().await;
    let store = db.store().await;
    store.migrate().await.expect("second migration run");
}

#[tokio::test]
async fn unique_constraints_upstream_lacked_exist() {
    use assessment_service::on_tx;
    use assessment_service::store::{Id, is_unique_violation};
    let db = TestDb::fresh().await;
    let store = db.store().await;
    let tenant = Id(uuid::Uuid::new_v4());
    let org = Id(uuid::Uuid::new_v4());
    let user = Id(uuid::Uuid::new_v4());
    let test = Id(uuid::Uuid::new_v4());
    let question = Id(uuid::Uuid::new_v4());

    let mut tx = store.begin().await.unwrap();
    on_tx!(&mut tx, c => {
        sqlx::query(r#"INSERT INTO "tests" ("testId","type","tenantId","organisationId","title","createdBy")
                       VALUES ($1,'plain',$2,$3,'T',$4)"#)
            .bind(test).bind(tenant).bind(org).bind(user).execute(&mut *c).await.unwrap();
        sqlx::query(r#"INSERT INTO "questions" ("questionId","tenantId","organisationId","text","type","createdBy")
                       VALUES ($1,$2,$3,'Q','mcq',$4)"#)
            .bind(question).bind(tenant).bind(org).bind(user).execute(&mut *c).await.unwrap();
    });
    tx.commit().await.unwrap();

    // (testId, questionId) on testQuestions.
    let link = r#"INSERT INTO "testQuestions" ("testQuestionId","tenantId","organisationId","testId","questionId")
                  VALUES ($1,$2,$3,$4,$5)"#;
    // (testId, userId, attempt) on testAttempts.
    let attempt = r#"INSERT INTO "testAttempts" ("attemptId","tenantId","organisationId","testId","userId","attempt")
                     VALUES ($1,$2,$3,$4,$5,1)"#;
    let attempt_id = Id(uuid::Uuid::new_v4());
    let mut tx = store.begin().await.unwrap();
    on_tx!(&mut tx, c => {
        sqlx::query(link).bind(Id(uuid::Uuid::new_v4())).bind(tenant).bind(org).bind(test).bind(question)
            .execute(&mut *c).await.unwrap();
        sqlx::query(attempt).bind(attempt_id).bind(tenant).bind(org).bind(test).bind(user)
            .execute(&mut *c).await.unwrap();
    });
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let e = on_tx!(&mut tx, c => {
        sqlx::query(link).bind(Id(uuid::Uuid::new_v4())).bind(tenant).bind(org).bind(test).bind(question)
            .execute(&mut *c).await.unwrap_err()
    });
    assert!(is_unique_violation(&e), "{e}");
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    let e = on_tx!(&mut tx, c => {
        sqlx::query(attempt).bind(Id(uuid::Uuid::new_v4())).bind(tenant).bind(org).bind(test).bind(user)
            .execute(&mut *c).await.unwrap_err()
    });
    assert!(is_unique_violation(&e), "{e}");
    drop(tx);

    // (attemptId, questionId) on testUserAnswers.
    let answer = r#"INSERT INTO "testUserAnswers" ("attemptAnsId","tenantId","organisationId","attemptId","questionId","answer")
                    VALUES ($1,$2,$3,$4,$5,$6)"#;
    let mut tx = store.begin().await.unwrap();
    let e = on_tx!(&mut tx, c => {
        let body = sqlx::types::Json(serde_json::json!({"selectedOptionIds": []}));
        sqlx::query(answer).bind(Id(uuid::Uuid::new_v4())).bind(tenant).bind(org).bind(attempt_id).bind(question).bind(&body)
            .execute(&mut *c).await.unwrap();
        sqlx::query(answer).bind(Id(uuid::Uuid::new_v4())).bind(tenant).bind(org).bind(attempt_id).bind(question).bind(&body)
            .execute(&mut *c).await.unwrap_err()
    });
    assert!(is_unique_violation(&e), "{e}");
}

/// Migration 7 rebuilds `subscriptions` on SQLite (its kind CHECK gains `redis`): the
/// deliveries and tries that refer to it survive, and foreign keys are enforced afterwards.
#[tokio::test]
async fn the_subscriptions_rebuild_keeps_the_delivery_history() {
    use assessment_service::on_tx;
    use assessment_service::store::{Id, Pools};
    use sqlx::migrate::Migrator;
    use sqlx::types::Json;
    let db = TestDb::fresh().await;
    let store = db.connect().await;
    let before = |m: &'static Migrator| Migrator {
        migrations: m
            .iter()
            .filter(|x| x.version < 20261130000007)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..Migrator::DEFAULT
    };
    match store.pools() {
        Pools::Sqlite { writer, .. } => before(&SQLITE_MIGRATOR).run(writer).await.unwrap(),
        Pools::Postgres(pool) => before(&POSTGRES_MIGRATOR).run(pool).await.unwrap(),
    }
    let (sub, delivery) = (Id(uuid::Uuid::new_v4()), Id(uuid::Uuid::new_v4()));
    let mut tx = store.begin().await.unwrap();
    on_tx!(&mut tx, c => {
        sqlx::query(r#"INSERT INTO "subscriptions" ("subscriptionId", "name", "source", "kind", "target")
                       VALUES ($1, 'lms', 'env', 'webhook', 'https://lms.example.org/hook')"#)
            .bind(sub).execute(&mut *c).await.unwrap();
        sqlx::query(r#"INSERT INTO "events" ("eventId", "name", "payload") VALUES ($1, 'test.created', $2)"#)
            .bind(Id(uuid::Uuid::new_v4())).bind(Json(serde_json::json!({"name": "test.created"})))
            .execute(&mut *c).await.unwrap();
        sqlx::query(r#"INSERT INTO "deliveries" ("deliveryId", "eventSeq", "subscriptionId", "status", "attemptCount")
                       VALUES ($1, (SELECT MAX("seq") FROM "events"), $2, 'dead', 4)"#)
            .bind(delivery).bind(sub).execute(&mut *c).await.unwrap();
        sqlx::query(r#"INSERT INTO "deliveryAttempts" ("deliveryAttemptId", "deliveryId", "attemptNumber", "startedAt", "durationMs", "error")
                       VALUES ($1, $2, 1, $3, 12, 'HTTP 500')"#)
            .bind(Id(uuid::Uuid::new_v4())).bind(delivery)
            .bind(assessment_service::store::Ts::new(chrono::Utc::now()))
            .execute(&mut *c).await.unwrap();
    });
    tx.commit().await.unwrap();

    store.migrate().await.expect("migration 7 and any later");
    let tries = assessment_service::store::deliveries::attempts_of(&store, delivery.0)
        .await
        .unwrap();
    assert_eq!(tries, vec![(1, None, Some("HTTP 500".to_string()))]);
    let subs = assessment_service::store::deliveries::all_subscriptions(&store)
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    let mut tx = store.begin().await.unwrap();
    on_tx!(&mut tx, c => {
        sqlx::query(r#"INSERT INTO "subscriptions" ("subscriptionId", "name", "source", "kind", "target")
                       VALUES ($1, 'stream', 'env', 'redis', 'redis://127.0.0.1:6379 topic=t')"#)
            .bind(Id(uuid::Uuid::new_v4())).execute(&mut *c).await.unwrap();
        let orphan = sqlx::query(r#"INSERT INTO "deliveries" ("deliveryId", "eventSeq", "subscriptionId")
                       VALUES ($1, (SELECT MAX("seq") FROM "events"), $2)"#)
            .bind(Id(uuid::Uuid::new_v4())).bind(Id(uuid::Uuid::new_v4()))
            .execute(&mut *c).await;
        assert!(orphan.is_err(), "foreign keys are enforced again");
    });
}
