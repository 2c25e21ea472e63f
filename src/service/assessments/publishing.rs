//! Publishing and unpublishing a test: the checks, the totals and their events.

#[allow(unused_imports)]
use super::*;
use crate::domain::event_data::{TestChanged, TestPublication};

/// Moves a test to `target` with the checks and events of publish / unpublish.
pub(super) async fn change_status(
    uow: &mut UnitOfWork,
    t: &mut Test,
    target: TestStatus,
) -> AppResult<()> {
    if t.status == target {
        return Ok(());
    }
    let scope = uow.scope();
    match target {
        TestStatus::Published => {
            let facts = publish_facts(uow.tx(), &scope, t).await?;
            let publication = rules_of::check_publish(&facts).map_err(AppError::Unprocessable)?;
            t.total_marks_computed = facts.total_marks == Marks::ZERO;
            t.total_marks = publication.total_marks;
            t.status = TestStatus::Published;
            super::versions::record(uow, t, publication.question_count).await?;
            uow.stamp(t);
            repo::update(uow.tx(), t).await?;
            uow.emit(
                EventName::TestPublished,
                &TestPublication {
                    test_id: t.test_id.0,
                    test_title: t.title.clone(),
                    test_type: t.test_type,
                    total_marks: publication.total_marks,
                    question_count: publication.question_count,
                    version: t.version,
                },
            );
        }
        TestStatus::Unpublished | TestStatus::Draft => {
            let was_published = t.status == TestStatus::Published;
            t.status = target;
            uow.stamp(t);
            repo::update(uow.tx(), t).await?;
            if was_published {
                let count = question_count(uow.tx(), &scope, t).await?;
                uow.emit(
                    EventName::TestUnpublished,
                    &TestPublication {
                        test_id: t.test_id.0,
                        test_title: t.title.clone(),
                        test_type: t.test_type,
                        total_marks: t.total_marks,
                        question_count: count,
                        version: t.version,
                    },
                );
            }
        }
        TestStatus::Archived => {
            return Err(AppError::validation(
                "Archive a test with DELETE /tests/{id}, not by setting its status",
            ));
        }
    }
    Ok(())
}

pub(super) async fn question_count(tx: &mut Tx, scope: &Scope, t: &Test) -> AppResult<u32> {
    Ok(match t.test_type {
        TestType::RuleBased => {
            let rules = active_rules(tx, scope, t.test_id.0).await?;
            rules
                .iter()
                .map(|r| r.number_of_questions.max(0) as u32)
                .sum()
        }
        _ => repo::linked_question_facts(tx, scope, t.test_id.0)
            .await?
            .iter()
            .filter(|(_, _, conditional)| !conditional)
            .count() as u32,
    })
}

/// The active rules of a test, in the order they draw: highest priority first, then newest.
pub(crate) async fn active_rules(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
) -> AppResult<Vec<Rule>> {
    let filter = RuleFilter {
        test_id: Some(test_id),
        active_only: true,
        ..RuleFilter::default()
    };
    Ok(rule_repo::list(tx, scope, filter, false).await?)
}

/// What a rule's pool holds, for publishing and previews.
pub async fn rule_pool(
    tx: &mut Tx,
    scope: &Scope,
    rule: &Rule,
) -> AppResult<Vec<question_repo::Question>> {
    // Criteria are written by this service; one it cannot read is a bug, not "match all".
    let criteria: Criteria = serde_json::from_value(rule.criteria.0.clone())
        .map_err(|e| anyhow::anyhow!("rule {} has unreadable criteria: {e}", rule.rule_id.0))?;
    let mut filter = criteria.filter();
    filter.min_marks = rule.min_marks();
    filter.max_marks = rule.max_marks();
    match rule.selection_mode {
        SelectionMode::Dynamic => Ok(question_repo::matching(&mut *tx, scope, &filter).await?),
        SelectionMode::Preselected => {
            let Some(test_id) = rule.test_id else {
                return Ok(Vec::new());
            };
            let ids: Vec<Uuid> = repo::links_of(&mut *tx, scope, test_id.0)
                .await?
                .into_iter()
                .filter(|l| l.rule_id == Some(rule.rule_id))
                .map(|l| l.question_id.0)
                .collect();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            filter.include_ids = ids;
            Ok(question_repo::matching(&mut *tx, scope, &filter).await?)
        }
    }
}

pub(super) async fn publish_facts(tx: &mut Tx, scope: &Scope, t: &Test) -> AppResult<PublishFacts> {
    let question_marks = repo::linked_question_facts(tx, scope, t.test_id.0)
        .await?
        .into_iter()
        .filter(|(_, _, conditional)| !conditional)
        .map(|(_, m, _)| m)
        .collect();
    let mut supplies = Vec::new();
    if t.test_type == TestType::RuleBased {
        let rules = active_rules(tx, scope, t.test_id.0).await?;
        for rule in &rules {
            let pool = rule_pool(tx, scope, rule).await?;
            supplies.push(RuleSupply {
                name: rule.name.clone(),
                needed: rule.number_of_questions.max(0) as u32,
                pool: pool.iter().map(|q| (q.question_id.0, q.marks)).collect(),
            });
        }
    }
    Ok(PublishFacts {
        test_type: t.test_type,
        question_marks,
        rules: supplies,
        // A total the service computed last time is computed afresh.
        total_marks: if t.total_marks_computed {
            Marks::ZERO
        } else {
            t.total_marks
        },
        passing_marks: t.passing_marks,
    })
}

/// `POST /tests/{id}/publish`.
pub async fn publish(store: &Store, clock: &Clock, actor: &Actor, id: Uuid) -> AppResult<Test> {
    set_status(store, clock, actor, id, TestStatus::Published).await
}

/// `POST /tests/{id}/unpublish`.
pub async fn unpublish(store: &Store, clock: &Clock, actor: &Actor, id: Uuid) -> AppResult<Test> {
    set_status(store, clock, actor, id, TestStatus::Unpublished).await
}

pub(super) async fn set_status(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    target: TestStatus,
) -> AppResult<Test> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let mut t = lock_live(uow.tx(), &actor.scope, id).await?;
    if target == TestStatus::Published && t.status == TestStatus::Published {
        return Err(AppError::conflict("Test is already published"));
    }
    if target == TestStatus::Unpublished && t.status != TestStatus::Published {
        return Err(AppError::conflict("Test is not published"));
    }
    change_status(&mut uow, &mut t, target).await?;
    uow.commit().await?;
    Ok(t)
}

/// The `data` of `test.created` and `test.updated` (the test's own fields).
pub(crate) fn test_summary(t: &Test) -> TestChanged {
    TestChanged {
        test_id: t.test_id.0,
        test_title: t.title.clone(),
        test_type: t.test_type,
        status: t.status,
    }
}
