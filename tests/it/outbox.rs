//! The outbox: an event appended in a transaction exists iff the transaction commits.

use assessment_service::domain::event::{EventContext, EventName, NewEvent};
use assessment_service::domain::ids::{OrganisationId, TenantId, UserId};
use assessment_service::events;
use assessment_service::store::outbox;
use chrono::Utc;
use serde_json::json;
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
        outbox::find_in(&mut tx, e.id).await.unwrap().is_some(),
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
    assert!(outbox::find_in(&mut tx, e.id).await.unwrap().is_none());
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
