//! Published versions: each publish that changes what a test scores records a version, and an
//! attempt is scored against the version it started on (see `store::revisions`).

#[allow(unused_imports)]
use super::*;
use crate::store::attempts::Attempt;
use crate::store::revisions::{self as version_repo, Pin, RuleAt, TestVersion};

/// What a publish of `t` would record (numbered as the next version).
async fn candidate(
    tx: &mut Tx,
    scope: &Scope,
    t: &Test,
    question_count: u32,
    by: Uuid,
    now: Ts,
) -> AppResult<TestVersion> {
    let (questions, rules) = if t.test_type == TestType::RuleBased {
        let rules = active_rules(tx, scope, t.test_id.0).await?;
        let rules = rules
            .iter()
            .map(|r| RuleAt {
                rule_id: r.rule_id.0,
                name: r.name.clone(),
                section_id: r.section_id.map(|s| s.0),
                number_of_questions: r.number_of_questions,
                criteria: r.criteria.0.clone(),
                selection_mode: r.selection_mode.as_str().to_string(),
                selection_strategy: r.selection_strategy.as_str().to_string(),
                min_marks: r.min_marks(),
                max_marks: r.max_marks(),
            })
            .collect();
        (Vec::new(), rules)
    } else {
        let ids: Vec<Uuid> = repo::links_of(&mut *tx, scope, t.test_id.0)
            .await?
            .iter()
            .map(|l| l.question_id.0)
            .collect();
        let mut pins: Vec<Pin> = question_repo::by_ids(&mut *tx, scope, &ids)
            .await?
            .iter()
            .map(|q| Pin {
                question_id: q.question_id.0,
                revision: q.revision,
            })
            .collect();
        pins.sort_by_key(|p| p.question_id);
        (pins, Vec::new())
    };
    Ok(TestVersion {
        test_id: t.test_id,
        version: t.version + 1,
        tenant_id: t.tenant_id,
        organisation_id: t.organisation_id,
        grading_type: t.grading_type,
        total_marks: t.total_marks,
        passing_marks: t.passing_marks,
        question_count: i32::try_from(question_count).unwrap_or(i32::MAX),
        questions: sqlx::types::Json(questions),
        rules: sqlx::types::Json(rules),
        published_by: Id(by),
        published_at: now,
    })
}

/// Whether two versions score alike (same questions at the same revisions, same rules, same
/// grading and marks).
fn scores_alike(a: &TestVersion, b: &TestVersion) -> bool {
    a.grading_type == b.grading_type
        && a.total_marks == b.total_marks
        && a.passing_marks == b.passing_marks
        && a.questions.0 == b.questions.0
        && a.rules.0 == b.rules.0
}

/// Records the version `t` is being published as, unless it scores as its latest does; sets
/// `t.version` (the caller writes `t`).
pub(super) async fn record(
    uow: &mut UnitOfWork,
    t: &mut Test,
    question_count: u32,
) -> AppResult<()> {
    let scope = uow.scope();
    let (by, now) = (uow.user().0, uow.now());
    let next = candidate(uow.tx(), &scope, t, question_count, by, now).await?;
    if t.version > 0
        && let Some(latest) =
            version_repo::version(uow.tx(), &scope, t.test_id.0, t.version).await?
        && scores_alike(&latest, &next)
    {
        return Ok(());
    }
    version_repo::insert_version(uow.tx(), &next).await?;
    t.version = next.version;
    Ok(())
}

/// `GET /tests/{id}/versions`: the test's versions, newest first.
pub async fn versions(store: &Store, scope: &Scope, test_id: Uuid) -> AppResult<Vec<TestVersion>> {
    live(store, scope, test_id).await?;
    Ok(version_repo::versions(store, scope, test_id).await?)
}

/// What scores an attempt: its version's grading type and passing marks (the test's own when
/// the attempt is on the test's latest version, or on none).
#[derive(Debug, Clone, Copy)]
pub struct ScoringTerms {
    pub grading_type: GradingType,
    pub passing_marks: Marks,
}

/// The [`ScoringTerms`] of `attempt` on `test`: one read only when the attempt is on an
/// earlier version than the test's latest.
pub async fn scoring_terms(
    tx: &mut Tx,
    scope: &Scope,
    attempt: &Attempt,
    test: &Test,
) -> AppResult<ScoringTerms> {
    let own = ScoringTerms {
        grading_type: test.grading_type,
        passing_marks: test.passing_marks,
    };
    if attempt.test_version == test.version || attempt.test_version == 0 {
        return Ok(own);
    }
    Ok(
        match version_repo::version(tx, scope, test.test_id.0, attempt.test_version).await? {
            Some(v) => ScoringTerms {
                grading_type: v.grading_type,
                passing_marks: v.passing_marks,
            },
            None => own,
        },
    )
}
