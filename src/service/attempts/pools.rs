//! The rule pools of published rule-based tests: each active rule with the questions it may
//! draw from, kept per instance on PostgreSQL while nothing in the tenant's question bank
//! changes (the store's watch hears every change to a question row, see `store::watch`), so
//! a burst of starts does not read every rule's pool again for every learner.
//!
//! An entry is for the test at its `updatedAt` (rules and preselected links cannot change
//! while it is published) and holds a ticket of the bank it was read from. A change heard
//! late (another instance's, within milliseconds) can leave a question out of a draw that
//! could have had it, never put in one that is gone: the start checks the questions it drew
//! against its own read of them, and draws again from pools read in its transaction when
//! one is no longer published, or when a kept pool is too small.

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::enums::TestStatus;
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::error::AppResult;
use crate::service::hierarchy::ByTest;
use crate::store::Tx;
use crate::store::assessments::Test;
use crate::store::rules::Rule;
use crate::store::watch::{BankTicket, TestWatch};

/// The active rules of a test, each with its pool (question id and marks, in pool order).
#[derive(Debug)]
pub struct Pools {
    pub rules: Vec<(Rule, Vec<(Uuid, Marks)>)>,
    ticket: Option<BankTicket>,
}

/// The kept pools, by test.
pub type RulePools = ByTest<Arc<Pools>>;

/// The pools of `test`, and whether they are kept ones (not read in `tx`): the kept ones
/// while the bank is unchanged (unless `fresh`), else read through `tx` (and kept, for a
/// published test while the watch listens).
pub async fn of(
    kept: &RulePools,
    watch: &TestWatch,
    tx: &mut Tx,
    scope: &Scope,
    test: &Test,
    fresh: bool,
) -> AppResult<(Arc<Pools>, bool)> {
    let key = (*scope, test.test_id.0);
    if let Some(p) = kept.get(&key, test.updated_at).filter(|_| !fresh)
        && p.ticket.is_some_and(|t| watch.bank_unchanged(&t))
    {
        return Ok((p, true));
    }
    let pools = Arc::new(read(watch, tx, scope, test).await?);
    if pools.ticket.is_some() && test.status == TestStatus::Published {
        metrics::counter!("test_entries_made_total", "kind" => "rule_pools").increment(1);
        kept.put(key, test.updated_at, pools.clone());
    }
    Ok((pools, false))
}

/// The pools of `test` read through `tx` now.
async fn read(watch: &TestWatch, tx: &mut Tx, scope: &Scope, test: &Test) -> AppResult<Pools> {
    let ticket = watch.bank_ticket(scope.tenant.as_uuid());
    let mut rules = Vec::new();
    for rule in crate::service::assessments::active_rules(tx, scope, test.test_id.0).await? {
        let pool = crate::service::assessments::rule_pool(tx, scope, &rule)
            .await?
            .into_iter()
            .map(|q| (q.question_id.0, q.marks))
            .collect();
        rules.push((rule, pool));
    }
    Ok(Pools { rules, ticket })
}
