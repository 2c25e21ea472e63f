//! An attempt's paper: the answer key of a question, drawing the paper at start, and the learner's view of it.

#[allow(unused_imports)]
use super::*;
use crate::domain::enums::QuestionStatus;
use crate::store::watch::TestWatch;

/// The key of a question as the test grades it.
pub fn key_of(q: &Question, options: &[QuestionOption], grading: GradingType) -> QuestionKey {
    let params = crate::service::questions::params_of(q);
    QuestionKey {
        qtype: q.qtype,
        grading_type: grading,
        marks: q.marks,
        partial: q.allow_partial_scoring,
        multi_select: params.allows_multiple(),
        case_sensitive: params.case_sensitive.unwrap_or(false),
        min_length: params.min_length,
        max_length: params.max_length,
        word_limit: params.word_limit,
        options: options
            .iter()
            .map(|o| KeyOption {
                id: o.question_option_id.0,
                text: o.text.clone(),
                is_correct: o.is_correct,
                marks: o.marks,
                blank_index: o.blank_index.and_then(|b| u32::try_from(b).ok()),
                match_with: o.match_with.clone(),
                case_sensitive: o.case_sensitive,
            })
            .collect(),
    }
}

/// Builds the paper of a new attempt from the test (plain, from its kept content) or its
/// rules (rule-based); returns it with the questions and options it holds.
pub(super) async fn build_paper(
    tx: &mut Tx,
    watch: &TestWatch,
    scope: &Scope,
    test: &Test,
    contents: &Contents,
    kept_pools: &pools::RulePools,
    rng: &mut SeededRng,
) -> AppResult<(Vec<PaperItem>, Arc<Content>)> {
    if test.test_type != TestType::RuleBased {
        let content = match content::kept(contents, &mut *tx, scope, test).await? {
            Some(kept) => kept,
            // Not published (so not kept): read now.
            None => Arc::new(content::read(&mut *tx, scope, test.test_id.0).await?),
        };
        return Ok((plain_paper(&content, test, rng)?, content));
    }
    let (mut pools, mut kept) = pools::of(kept_pools, watch, tx, scope, test, false).await?;
    loop {
        match draw(&pools, test, rng) {
            Err(e) if !kept => return Err(e),
            Err(_) => {} // a kept pool may be one question short of now: read it again
            Ok(mut items) => {
                // A rule-based paper: its questions and options, in stored option order.
                let ids: Vec<Uuid> = items.iter().map(|i| i.question_id).collect();
                let (questions, options) = questions_with_options(&mut *tx, scope, &ids).await?;
                let live = ids.iter().all(|id| {
                    questions
                        .get(id)
                        .is_some_and(|q| q.status == QuestionStatus::Published)
                });
                if live || !kept {
                    for item in &mut items {
                        item.option_order = options
                            .get(&item.question_id)
                            .map(|o| o.iter().map(|o| o.question_option_id.0).collect())
                            .unwrap_or_default();
                        item.revision = questions.get(&item.question_id).map(|q| q.revision);
                    }
                    shuffle_options(&mut items, test, rng);
                    let content = Content::unkept(questions, options, Vec::new());
                    return Ok((items, Arc::new(content)));
                }
            }
        }
        (pools, kept) = pools::of(kept_pools, watch, tx, scope, test, true).await?;
    }
}

/// A rule-based paper drawn from `pools`: each rule's questions (none twice, taken by each
/// rule's strategy; where pools overlap, [`crate::domain::draw::assign`] finds the choice that
/// satisfies every rule), shuffled within each section when the test says so, sections in
/// the order the rules gave them.
fn draw(pools: &pools::Pools, test: &Test, rng: &mut SeededRng) -> AppResult<Vec<PaperItem>> {
    let ranked: Vec<Vec<Uuid>> = pools
        .rules
        .iter()
        .map(|(rule, pool)| rules::rank(pool, rule.selection_strategy, rng))
        .collect();
    let needs: Vec<usize> = pools
        .rules
        .iter()
        .map(|(rule, _)| rule.number_of_questions.max(0) as usize)
        .collect();
    let drawn = crate::domain::draw::assign(&ranked, &needs).map_err(|r| {
        let (rule, pool) = &pools.rules[r];
        AppError::unprocessable(format!(
            "Not enough questions available for rule \"{}\": found {}, required {}",
            rule.name,
            pool.len(),
            needs[r]
        ))
    })?;
    let mut items: Vec<PaperItem> = Vec::new();
    for ((rule, _), picked) in pools.rules.iter().zip(drawn) {
        for id in picked {
            items.push(PaperItem {
                question_id: id,
                section_id: rule.section_id.map(|s| s.0),
                rule_id: Some(rule.rule_id.0),
                is_compulsory: false,
                is_conditional: false,
                option_order: Vec::new(),
                revision: None,
            });
        }
    }
    if test.questions_shuffle {
        let mut order: Vec<Option<Uuid>> = Vec::new();
        for i in &items {
            if !order.contains(&i.section_id) {
                order.push(i.section_id);
            }
        }
        let mut shuffled = Vec::with_capacity(items.len());
        for section in order {
            let mut group: Vec<PaperItem> = items
                .iter()
                .filter(|i| i.section_id == section)
                .cloned()
                .collect();
            rules::shuffle(&mut group, rng);
            shuffled.extend(group);
        }
        items = shuffled;
    }
    has_questions(&items)?;
    Ok(items)
}

/// The paper of a new attempt at a plain test, from the test's content: its sections in
/// order, the top-level questions of each shuffled when the test says so (conditional ones
/// keep their places after them), and the options of each question when it says so.
pub(super) fn plain_paper(
    content: &Content,
    test: &Test,
    rng: &mut SeededRng,
) -> AppResult<Vec<PaperItem>> {
    let mut items = Vec::new();
    for section in &content.sections {
        let mut section_items = section.clone();
        if test.questions_shuffle {
            let (mut top, rest): (Vec<_>, Vec<_>) =
                section_items.into_iter().partition(|i| !i.is_conditional);
            rules::shuffle(&mut top, rng);
            top.extend(rest);
            section_items = top;
        }
        items.extend(section_items);
    }
    has_questions(&items)?;
    shuffle_options(&mut items, test, rng);
    Ok(items)
}

fn has_questions(items: &[PaperItem]) -> AppResult<()> {
    if items.iter().all(|i| i.is_conditional) {
        return Err(AppError::unprocessable(
            "This test has no questions to attempt",
        ));
    }
    Ok(())
}

fn shuffle_options(items: &mut [PaperItem], test: &Test, rng: &mut SeededRng) {
    if test.answers_shuffle {
        for item in items {
            rules::shuffle(&mut item.option_order, rng);
        }
    }
}

/// The kept content of the attempt's test (see [`content`]), if it holds every question of
/// `paper` at the paper's revision (it holds every question the test links now; a paper drawn
/// from an earlier version may hold earlier revisions).
/// The test row comes from the store's watch when known, so a learner's paper of a kept test
/// costs one read, the attempt's.
pub(crate) async fn kept_content(
    store: &Store,
    contents: &Contents,
    scope: &Scope,
    test_id: Uuid,
    paper: &[PaperItem],
) -> AppResult<Option<Arc<Content>>> {
    let Some(test) =
        crate::store::watch::current(store.test_watch(), store, scope, test_id).await?
    else {
        return Ok(None);
    };
    Ok(content::kept(contents, store, scope, &test)
        .await?
        .filter(|c| c.holds(paper)))
}

/// The questions of the attempt's paper, in order, with options in the paper's order and no
/// answer keys.
pub async fn questions(
    store: &Store,
    contents: &Contents,
    scope: &Scope,
    user: Uuid,
    path_user: Uuid,
    attempt_id: Uuid,
) -> AppResult<Vec<Value>> {
    own_path_user(user, path_user)?;
    // The paper is fixed at the start, and a kept test's content cannot change while it is
    // published: no snapshot need hold the reads together.
    let a = own_attempt(store, scope, user, attempt_id).await?;
    let paper = paper_of(&a);
    let ids: Vec<Uuid> = paper.iter().map(|p| p.question_id).collect();
    let content = match kept_content(store, contents, scope, a.test_id.0, &paper).await? {
        Some(c) => c,
        None => {
            // One read transaction: one pooled connection for the reads (under load,
            // separate reads each wait for a connection again) and one snapshot.
            let mut tx = store.begin_read().await?;
            let (questions, options) = questions_at(&mut tx, scope, &paper).await?;
            let reveals = question_repo::links_to(&mut tx, scope, &ids).await?;
            tx.rollback().await?;
            Arc::new(Content::unkept(questions, options, reveals))
        }
    };
    let (questions, options, links) = (&content.questions, &content.options, &content.reveals);
    let mut out = Vec::new();
    for (i, item) in paper.iter().enumerate() {
        let Some(q) = questions.get(&item.question_id) else {
            continue;
        };
        let by_id: HashMap<Uuid, &QuestionOption> = options
            .get(&item.question_id)
            .map(|os| os.iter().map(|o| (o.question_option_id.0, o)).collect())
            .unwrap_or_default();
        let shown: Vec<&QuestionOption> = item
            .option_order
            .iter()
            .filter_map(|id| by_id.get(id).copied())
            .collect();
        let mut v = json!({
            "questionId": q.question_id,
            "sectionId": item.section_id,
            "ruleId": item.rule_id,
            "ordering": i + 1,
            "isCompulsory": item.is_compulsory,
            "isConditional": item.is_conditional,
            "parentId": q.parent_id,
            "revealedByOptionIds": links.iter().filter(|l| l.is_active && l.question_id == q.question_id).map(|l| l.option_id).collect::<Vec<_>>(),
            "text": q.text,
            "description": q.description,
            "media": q.media,
            "type": q.qtype,
            "level": q.level,
            "marks": q.marks,
            "params": q.params,
            "options": shown.iter().enumerate().map(|(n, o)| json!({
                "questionOptionId": o.question_option_id,
                "text": if q.qtype == QuestionType::FillBlank { Value::Null } else { json!(o.text) },
                "media": o.media,
                "ordering": n,
            })).collect::<Vec<_>>(),
        });
        hide_answer_options(&mut v, q.qtype, shown.iter().copied());
        if q.qtype == QuestionType::Match {
            let mut targets: Vec<&str> = shown
                .iter()
                .filter_map(|o| o.match_with.as_deref())
                .collect();
            targets.sort_by_key(|t| t.to_lowercase());
            v["matchWithOptions"] = json!(
                targets
                    .iter()
                    .enumerate()
                    .map(|(n, t)| json!({"matchWith": t, "ordering": n}))
                    .collect::<Vec<_>>()
            );
        }
        out.push(v);
    }
    Ok(out)
}
