//! The outbox: an event appended in a transaction exists iff the transaction commits, and only
//! such commits wake dispatchers (this instance's, and on PostgreSQL the others').

use std::time::{Duration, Instant};

use assessment_service::domain::event::{EventContext, EventName, NewEvent};
use assessment_service::domain::ids::{OrganisationId, TenantId, UserId};
use assessment_service::events;
use assessment_service::store::{Store, Tx, TxConn, outbox};
use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::harness::*;

fn event() -> NewEvent {
    NewEvent::new(
        Uuid::now_v7(),
        EventName::AttemptStarted,
        EventContext {
            tenant_id: TenantId::parse(TENANT),
            organisation_id: OrganisationId::parse(ORG),
            user_id: UserId::parse(USER),
        },
        json!({"attemptId": Uuid::new_v4(), "testId": Uuid::new_v4(), "attemptNumber": 1}),
        Utc::now(),
    )
    .with_ordering_key("attempt:1")
}

#[tokio::test]
async fn an_event_in_a_rolled_back_transaction_does_not_exist() {
    let db = TestDb::fresh().await;
    let store = db.store().await;
    let e = event();
    let mut tx = store.begin().await.unwrap();
    events::append(&mut tx, &e).await.unwrap();
    assert!(
        outbox::find(&mut tx, e.id).await.unwrap().is_some(),
        "visible inside its own transaction"
    );
    assert!(
        events::find(&store, e.id).await.unwrap().is_none(),
        "invisible to others before commit"
    );
    tx.rollback().await.unwrap();
    assert!(events::find(&store, e.id).await.unwrap().is_none());
}

#[tokio::test]
async fn an_event_in_a_dropped_transaction_does_not_exist() {
    let db = TestDb::fresh().await;
    // One connection: the next transaction can only start once the dropped one is rolled
    // back, so "not found" below means rolled back, not merely still uncommitted.
    let store = db.connect_with(1).await;
    store.migrate().await.unwrap();
    let e = event();
    {
        let mut tx = store.begin().await.unwrap();
        events::append(&mut tx, &e).await.unwrap();
        // Dropped without commit, as when a handler fails or times out.
    }
    // The connection goes back to the pool and the transaction is rolled back before reuse.
    let mut tx = store.begin().await.unwrap();
    assert!(outbox::find(&mut tx, e.id).await.unwrap().is_none());
    tx.rollback().await.unwrap();
    assert!(events::find(&store, e.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_committed_event_is_stored_with_its_exact_payload() {
    let db = TestDb::fresh().await;
    let store = db.store().await;
    let first = event();
    let second = event();
    let mut tx = store.begin().await.unwrap();
    let seq1 = events::append(&mut tx, &first).await.unwrap();
    let seq2 = events::append(&mut tx, &second).await.unwrap();
    tx.commit().await.unwrap();
    assert!(seq2 > seq1, "sequence follows append order");

    let stored = events::find(&store, first.id)
        .await
        .unwrap()
        .expect("committed");
    assert_eq!(stored.seq, seq1);
    assert_eq!(stored.event_id.0, first.id);
    assert_eq!(stored.name, "attempt.started");
    assert_eq!(
        stored.tenant_id.map(|t| t.0.to_string()).as_deref(),
        Some(TENANT)
    );
    assert_eq!(
        stored.organisation_id.map(|t| t.0.to_string()).as_deref(),
        Some(ORG)
    );
    assert_eq!(
        stored.user_id.map(|t| t.0.to_string()).as_deref(),
        Some(USER)
    );
    assert_eq!(stored.ordering_key.as_deref(), Some("attempt:1"));
    assert_eq!(stored.payload.0, first.payload());
    assert_eq!(
        stored.created_at.0.timestamp_millis(),
        first.timestamp.timestamp_millis()
    );
}

#[tokio::test]
async fn the_same_event_id_cannot_be_appended_twice() {
    let db = TestDb::fresh().await;
    let store = db.store().await;
    let e = event();
    let mut tx = store.begin().await.unwrap();
    events::append(&mut tx, &e).await.unwrap();
    let err = events::append(&mut tx, &e).await.unwrap_err();
    assert!(assessment_service::store::is_unique_violation(&err));
}

/// A commit that changes something but appends no event (as the dispatcher's own bookkeeping).
async fn commit_without_events(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    assessment_service::on_tx!(&mut tx, c => {
        sqlx::query(r#"UPDATE "deliveries" SET "updatedAt" = "updatedAt""#)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
            .unwrap()
    });
    assert!(!tx.appended());
    tx.commit().await.unwrap();
}

async fn commit_with_an_event(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    events::append(&mut tx, &event()).await.unwrap();
    assert!(tx.appended(), "appending marks the transaction");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn only_commits_that_append_events_wake_a_waiting_dispatcher() {
    let db = TestDb::fresh().await;
    let store = db.store().await;
    // What the dispatcher loop waits on, through a clone of the store as it holds one.
    let clone = store.clone();
    let mut waiting = tokio::spawn(async move { clone.signal().committed().await });
    tokio::task::yield_now().await;

    commit_without_events(&store).await;
    assessment_service::store::deliveries::release_leases(
        &store,
        assessment_service::clock::Clock::system().now(),
    )
    .await
    .unwrap();
    let mut tx = store.begin().await.unwrap();
    events::append(&mut tx, &event()).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "commits without events (and a rolled back append) wake nobody"
    );

    commit_with_an_event(&store).await;
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("a commit with an event wakes the dispatcher")
        .unwrap();
}

/// Only the wake-up is checked here, not the absence of one: the channel is shared by every
/// schema of the database, so the commits of tests running beside this one are heard too.
/// (A commit without events never reaches the publisher: the test above shows it does not
/// fire the signal at all.)
#[tokio::test]
async fn postgres_commits_with_events_of_another_instance_wake_this_one() {
    let db = TestDb::fresh().await;
    let here = db.store().await;
    if here.postgres().is_none() {
        // SQLite runs one process: its commits' own wake-ups are all there is.
        return;
    }
    // Another instance on the same database: its own pools and signal.
    let there = db.connect().await;
    let stop = CancellationToken::new();
    let listening = tokio::spawn(outbox::listen(here.clone(), stop.clone()));
    // The listener connects in the background: commit there until it is heard here.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        commit_with_an_event(&there).await;
        let heard = tokio::time::timeout(Duration::from_millis(200), here.signal().committed());
        if heard.await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the listener never heard a commit"
        );
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), listening)
        .await
        .expect("the listener stops with its token")
        .unwrap();
}

/// `SHOW synchronous_commit` in a PostgreSQL transaction.
/// `synchronous_commit` and `enable_seqscan` in `tx`.
async fn settings(tx: &mut Tx) -> (String, String) {
    let TxConn::Postgres(c) = tx.conn_mut() else {
        unreachable!("a PostgreSQL store")
    };
    sqlx::query_as(
        "SELECT current_setting('synchronous_commit'), current_setting('enable_seqscan')",
    )
    .fetch_one(&mut **c)
    .await
    .unwrap()
}

#[tokio::test]
async fn postgres_bookkeeping_commits_asynchronously_and_only_itself() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    if store.postgres().is_none() {
        // SQLite has no asynchronous commit: its transactions are unchanged.
        return;
    }
    for _ in 0..3 {
        let mut tx = store.begin_async_commit().await.unwrap();
        let off = ("off".to_string(), "off".to_string());
        assert_eq!(settings(&mut tx).await, off);
        tx.commit().await.unwrap();
        // The settings were local to that transaction: the pooled connection is back to normal.
        let mut tx = store.begin().await.unwrap();
        let on = ("on".to_string(), "on".to_string());
        assert_eq!(settings(&mut tx).await, on);
        tx.commit().await.unwrap();
    }
}
