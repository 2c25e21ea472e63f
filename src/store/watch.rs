//! What this instance knows of the tests as they are now, so the learner's views of a published
//! test need not read its row on every request.
//!
//! On PostgreSQL a trigger announces every change to a test row on [`CHANNEL`] when its
//! transaction commits (migration `test_changes`), and a task of each instance listens on a
//! connection of its own. A test row read while the listener was connected is known until a
//! change to it is heard; a commit of this instance that changed a test forgets it at once (see
//! [`Tx`](super::Tx)), so an instance never serves its own change late. Another instance hears
//! of it when the notification arrives, within milliseconds: its learner views may lag that
//! long, and no more. Scoring never relies on this: a save is guarded by the test's
//! `updatedAt` in its own statement.
//!
//! The same trigger mechanism announces every change to a question row by tenant (migration
//! `bank_changes`): what depends on a tenant's bank (the rule pools of its published
//! rule-based tests) is valid while no change to that bank was heard since it was read.
//!
//! Whenever the listener is not connected, nothing is known and every use reads the row (so
//! on SQLite, which has no notifications, always). A reconnection forgets everything: what
//! changed while it was away was not heard.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use uuid::Uuid;

use super::Db;
use super::assessments::{self as repo, Test};
use crate::domain::ids::Scope;

/// The PostgreSQL channel on which changes to test rows are announced (by test id), and
/// changes to question rows (as `bank:<tenant id>`).
pub const CHANNEL: &str = "assessment_tests";

/// How many test rows are known at most; past it, the map starts again empty.
const KNOWN_TESTS: usize = 10_000;

/// The tests as they are now, as far as this instance knows.
pub type TestWatch = Watch<Test>;

/// Rows known by test, forgotten when a change to their test is heard.
#[derive(Debug)]
pub struct Watch<T> {
    state: Mutex<State<T>>,
}

impl<T> Default for Watch<T> {
    fn default() -> Self {
        Watch {
            state: Mutex::new(State {
                listening: false,
                epoch: 0,
                changes: 0,
                known: HashMap::new(),
                banks: HashMap::new(),
            }),
        }
    }
}

#[derive(Debug)]
struct State<T> {
    /// Whether the listener is connected and listening.
    listening: bool,
    /// Counts the listener's (re)connections: a row read under an earlier one is not known.
    epoch: u64,
    /// Counts the changes heard (and made here): a row read before one of them is not known.
    changes: u64,
    known: HashMap<(Scope, Uuid), Arc<T>>,
    /// Counts the changes heard (and made here) to each tenant's question bank.
    banks: HashMap<Uuid, u64>,
}

/// Taken before reading what depends on a tenant's question bank (rule pools): what was read
/// stays valid while [`Watch::bank_unchanged`] says so.
#[derive(Debug, Clone, Copy)]
pub struct BankTicket {
    tenant: Uuid,
    epoch: u64,
    changes: u64,
}

/// Taken before a test row is read: the row may be known only if nothing was heard between.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    changes: u64,
}

impl<T> Watch<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The test row as it is now, if known.
    pub fn known(&self, scope: &Scope, id: Uuid) -> Option<Arc<T>> {
        self.state().known.get(&(*scope, id)).cloned()
    }

    /// To take before reading a test row that [`TestWatch::confirm`] is then given. `None`
    /// while not listening.
    pub fn ticket(&self) -> Option<Ticket> {
        let s = self.state();
        s.listening.then_some(Ticket {
            epoch: s.epoch,
            changes: s.changes,
        })
    }

    /// Knows `row`, the test `id` as read after `ticket` was taken, unless a change was heard
    /// (or the listener reconnected) since: a change heard after it forgets it again.
    pub fn confirm(&self, ticket: Option<Ticket>, scope: &Scope, id: Uuid, row: Arc<T>) {
        let Some(t) = ticket else { return };
        let mut s = self.state();
        if !s.listening || s.epoch != t.epoch || s.changes != t.changes {
            return;
        }
        if s.known.len() >= KNOWN_TESTS {
            s.known.clear();
        }
        s.known.insert((*scope, id), row);
    }

    /// To take before reading what depends on `tenant`'s question bank. `None` while not
    /// listening.
    pub fn bank_ticket(&self, tenant: Uuid) -> Option<BankTicket> {
        let s = self.state();
        s.listening.then(|| BankTicket {
            tenant,
            epoch: s.epoch,
            changes: s.banks.get(&tenant).copied().unwrap_or(0),
        })
    }

    /// Whether no change to the ticket's bank was heard since it was taken (and the listener
    /// has listened throughout).
    pub fn bank_unchanged(&self, ticket: &BankTicket) -> bool {
        let s = self.state();
        s.listening
            && s.epoch == ticket.epoch
            && s.banks.get(&ticket.tenant).copied().unwrap_or(0) == ticket.changes
    }

    /// A question of `tenant`'s bank changed.
    pub(super) fn bank_changed(&self, tenant: Uuid) {
        let mut s = self.state();
        if s.banks.len() >= KNOWN_TESTS && !s.banks.contains_key(&tenant) {
            // Counts start again from zero: no ticket taken before may pass.
            s.banks.clear();
            s.epoch += 1;
            s.known.clear();
        }
        *s.banks.entry(tenant).or_default() += 1;
    }

    /// The test `id` changed (or went): forgets it, and refuses rows read before now.
    pub(super) fn changed(&self, id: Uuid) {
        let mut s = self.state();
        s.changes += 1;
        s.known.retain(|(_, known), _| *known != id);
    }

    /// Listening from now on (after a connection or a reconnection): what was known is
    /// forgotten, since changes may have gone unheard.
    fn listening(&self, listening: bool) {
        let mut s = self.state();
        s.listening = listening;
        s.epoch += 1;
        s.known.clear();
        s.banks.clear();
    }

    pub fn len(&self) -> usize {
        self.state().known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The test `id` in `scope` as it is now: the known row, or one read through `db` (and known
/// from then on, while nothing changes it).
pub async fn current<'a>(
    watch: &TestWatch,
    db: impl Into<Db<'a>>,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<Arc<Test>>, sqlx::Error> {
    if let Some(test) = watch.known(scope, id) {
        return Ok(Some(test));
    }
    let ticket = watch.ticket();
    let Some(test) = repo::get(db, scope, id).await? else {
        return Ok(None);
    };
    let test = Arc::new(test);
    watch.confirm(ticket, scope, id, test.clone());
    Ok(Some(test))
}

/// Listens on [`CHANNEL`] for `watch`, on a connection of its own (not one of `main`'s), until
/// `main` closes. A lost connection is opened again after a second; meanwhile nothing is known.
pub(super) fn watch_in_background(watch: Arc<TestWatch>, main: PgPool, options: PgConnectOptions) {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    tokio::spawn(async move {
        tokio::select! {
            _ = main.close_event() => {}
            _ = listen(&watch, &own) => {}
        }
        watch.listening(false);
        own.close().await;
    });
}

async fn listen(watch: &TestWatch, own: &PgPool) {
    loop {
        let Err(e) = hear(watch, own).await;
        watch.listening(false);
        if matches!(e, sqlx::Error::PoolClosed) {
            return;
        }
        tracing::warn!(error = %e, "test change notifications lost; reading tests on every use until they return");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Connects, listens, and applies what it hears until the connection fails for good.
async fn hear(watch: &TestWatch, own: &PgPool) -> Result<Infallible, sqlx::Error> {
    let mut listener = PgListener::connect_with(own).await?;
    listener.listen(CHANNEL).await?;
    watch.listening(true);
    loop {
        // `None`: the connection was lost and listens again (eager reconnection), so changes
        // may have gone unheard.
        match listener.try_recv().await? {
            Some(n) => match n.payload().strip_prefix("bank:") {
                Some(tenant) => match tenant.parse::<Uuid>() {
                    Ok(tenant) => watch.bank_changed(tenant),
                    Err(_) => watch.listening(true),
                },
                None => match n.payload().parse::<Uuid>() {
                    Ok(id) => watch.changed(id),
                    Err(_) => watch.listening(true),
                },
            },
            None => watch.listening(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uuid::Uuid;

    use super::Watch;
    use crate::domain::ids::{OrganisationId, Scope, TenantId};

    fn scope_of(organisation: u128) -> Scope {
        Scope {
            tenant: TenantId::from_uuid(Uuid::from_u128(1)),
            organisation: OrganisationId::from_uuid(Uuid::from_u128(organisation)),
        }
    }

    fn scope() -> Scope {
        scope_of(2)
    }

    #[test]
    fn nothing_is_known_while_not_listening() {
        let w = Watch::<u32>::default();
        assert!(w.ticket().is_none());
        w.confirm(w.ticket(), &scope(), Uuid::from_u128(7), Arc::new(1));
        assert!(w.known(&scope(), Uuid::from_u128(7)).is_none());
    }

    #[test]
    fn a_row_is_known_until_its_test_changes() {
        let (w, a, b) = (
            Watch::<u32>::default(),
            Uuid::from_u128(7),
            Uuid::from_u128(8),
        );
        w.listening(true);
        w.confirm(w.ticket(), &scope(), a, Arc::new(1));
        w.confirm(w.ticket(), &scope(), b, Arc::new(2));
        assert_eq!(w.known(&scope(), a).as_deref(), Some(&1));
        assert!(w.known(&scope_of(3), a).is_none(), "known per scope");
        w.changed(a);
        assert!(w.known(&scope(), a).is_none());
        assert_eq!(w.known(&scope(), b).as_deref(), Some(&2), "others stay");
    }

    #[test]
    fn a_row_read_before_a_change_was_heard_is_not_known() {
        let (w, a) = (Watch::<u32>::default(), Uuid::from_u128(7));
        w.listening(true);
        let ticket = w.ticket();
        w.changed(Uuid::from_u128(9)); // heard while the row was being read
        w.confirm(ticket, &scope(), a, Arc::new(1));
        assert!(w.known(&scope(), a).is_none());
    }

    #[test]
    fn a_bank_ticket_holds_until_a_change_to_its_tenants_bank_or_a_reconnection() {
        let (w, t, other) = (
            Watch::<u32>::default(),
            Uuid::from_u128(1),
            Uuid::from_u128(5),
        );
        assert!(w.bank_ticket(t).is_none(), "not listening");
        w.listening(true);
        let ticket = w.bank_ticket(t).unwrap();
        w.bank_changed(other);
        assert!(w.bank_unchanged(&ticket), "another tenant's bank");
        w.bank_changed(t);
        assert!(!w.bank_unchanged(&ticket));
        let ticket = w.bank_ticket(t).unwrap();
        assert!(w.bank_unchanged(&ticket));
        w.listening(true);
        assert!(!w.bank_unchanged(&ticket), "changes may have gone unheard");
    }

    #[test]
    fn a_reconnection_forgets_everything_and_refuses_earlier_reads() {
        let (w, a) = (Watch::<u32>::default(), Uuid::from_u128(7));
        w.listening(true);
        let ticket = w.ticket();
        w.confirm(w.ticket(), &scope(), a, Arc::new(1));
        w.listening(true);
        assert!(w.is_empty());
        w.confirm(ticket, &scope(), a, Arc::new(1));
        assert!(w.known(&scope(), a).is_none());
        w.listening(false);
        assert!(w.ticket().is_none());
    }
}
