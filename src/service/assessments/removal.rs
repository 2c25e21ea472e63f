//! Deleting a test: archived with its sections, or removed with its rows (`hard`).

#[allow(unused_imports)]
use super::*;
use crate::domain::event_data::TestDeleted;

/// `DELETE /tests/{id}[?hard=true]`.
pub async fn delete(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    hard: bool,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let mut t = lock_live(uow.tx(), &actor.scope, id).await?;
    if repo::attempt_count(uow.tx(), &actor.scope, id).await? > 0 {
        return Err(AppError::validation(
            "Cannot delete test that has attempts. Archive the test instead.",
        ));
    }
    if hard {
        // The test's rules go with it: each is announced, as a rule deleted alone is.
        let filter = RuleFilter {
            test_id: Some(id),
            ..RuleFilter::default()
        };
        for r in rule_repo::list(uow.tx(), &actor.scope, filter, true).await? {
            uow.emit(EventName::RuleDeleted, &crate::service::rules::summary(&r));
        }
        repo::delete(uow.tx(), &actor.scope, id).await?;
    } else {
        for mut s in repo::sections_of(uow.tx(), &actor.scope, id).await? {
            s.status = crate::domain::enums::SectionStatus::Archived;
            uow.stamp(&mut s);
            repo::update_section(uow.tx(), &s).await?;
        }
        t.status = TestStatus::Archived;
        uow.stamp(&mut t);
        repo::update(uow.tx(), &t).await?;
    }
    uow.emit(EventName::TestDeleted, &TestDeleted { test_id: id, hard });
    uow.commit().await?;
    Ok(())
}
