//! Links between a parent question's options and the child questions they reveal.

#[allow(unused_imports)]
use super::*;

/// Body of `associate-option` / `disassociate-option`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionLinkIn {
    pub question_id: Uuid,
    pub option_id: Uuid,
}

/// Upstream's result of the option-link routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    pub success: bool,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub data: Value,
    pub timestamp: String,
}

impl ActionResult {
    pub fn new(message: &str, data: Value, now: Ts) -> Self {
        ActionResult {
            success: true,
            message: message.into(),
            data,
            timestamp: now.to_text(),
        }
    }
}

/// Links a child question to the parent option that reveals it.
pub async fn associate(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    input: OptionLinkIn,
) -> AppResult<()> {
    let now = clock.now();
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin_at(store, now, actor).await?;
    let q = repo::get_for_update(uow.tx(), &scope, input.question_id)
        .await?
        .ok_or_else(|| AppError::not_found("Question not found"))?;
    let Some(parent) = q.parent_id else {
        return Err(AppError::validation(
            "Question must have a parentId to be associated with an option",
        ));
    };
    // Which child an option reveals is part of the paper: frozen like the questions' keys
    // while a published test or a running attempt holds either question.
    super::lock_using_tests(uow.tx(), &scope, parent.0).await?;
    super::lock_using_tests(uow.tx(), &scope, input.question_id).await?;
    let parent_options = repo::options_of(uow.tx(), &scope, &[parent.0]).await?;
    if !parent_options
        .iter()
        .any(|o| o.question_option_id.0 == input.option_id)
    {
        // The option may exist under another question, or not at all.
        return Err(if option_exists(uow.tx(), &scope, input.option_id).await? {
            AppError::validation("Question parentId must match the option's questionId")
        } else {
            AppError::not_found("Option not found")
        });
    }
    if !repo::link_option(uow.tx(), &scope, input.option_id, input.question_id, now).await? {
        return Err(AppError::conflict(
            "Question is already associated with this option",
        ));
    }
    uow.emit(EventName::QuestionUpdated, &summary(&q));
    uow.commit().await?;
    Ok(())
}

pub(super) async fn option_exists(tx: &mut Tx, scope: &Scope, option_id: Uuid) -> AppResult<bool> {
    use crate::on_tx;
    let (t, o) = (Id(scope.tenant.as_uuid()), Id(scope.organisation.as_uuid()));
    let n: i64 = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT COUNT(*) FROM "questionOptions" WHERE "questionOptionId" = $1
            AND "tenantId" = $2 AND "organisationId" = $3"#)
            .bind(Id(option_id)).bind(t).bind(o).fetch_one(c).await
    })?;
    Ok(n > 0)
}

/// Removes a child question's link to an option.
pub async fn disassociate(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    input: OptionLinkIn,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let q = repo::get_for_update(uow.tx(), &actor.scope, input.question_id)
        .await?
        .ok_or_else(|| AppError::not_found("Question-option association not found"))?;
    if let Some(parent) = q.parent_id {
        super::lock_using_tests(uow.tx(), &actor.scope, parent.0).await?;
    }
    super::lock_using_tests(uow.tx(), &actor.scope, input.question_id).await?;
    if !repo::unlink_option(uow.tx(), &actor.scope, input.option_id, input.question_id).await? {
        return Err(AppError::not_found("Question-option association not found"));
    }
    uow.emit(EventName::QuestionUpdated, &summary(&q));
    uow.commit().await?;
    Ok(())
}

/// Query of `GET /questions/{id}/child-questions`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ChildQuestionsQuery {
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub include_options: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub include_associated_options: Option<bool>,
}

/// The child questions of a parent, as upstream lists them.
pub async fn child_questions(
    store: &Store,
    scope: &Scope,
    parent_id: Uuid,
    q: ChildQuestionsQuery,
) -> AppResult<Vec<Value>> {
    if repo::get(store, scope, parent_id).await?.is_none() {
        return Err(AppError::not_found("Parent question not found"));
    }
    let children = repo::children(store, scope, parent_id).await?;
    let ids: Vec<Uuid> = children.iter().map(|c| c.question_id.0).collect();
    let links = repo::links_to(store, scope, &ids).await?;
    let parent_options = repo::options_of(store, scope, &[parent_id]).await?;
    let option_text: HashMap<Uuid, &str> = parent_options
        .iter()
        .map(|o| (o.question_option_id.0, o.text.as_str()))
        .collect();
    let mut options = if q.include_options.unwrap_or(false) {
        options_by_question(repo::options_of(store, scope, &ids).await?)
    } else {
        HashMap::new()
    };
    let include_associated = q.include_associated_options.unwrap_or(false);
    Ok(children
        .into_iter()
        .map(|c| {
            let cid = c.question_id.0;
            let mine: Vec<_> = links.iter().filter(|l| l.question_id.0 == cid).collect();
            let mut v = json!({
                "questionId": c.question_id,
                "text": c.text,
                "type": c.qtype,
                "marks": c.marks,
                "parentId": c.parent_id,
                "status": c.status,
                "createdAt": c.created_at,
                "updatedAt": c.updated_at,
            });
            if q.include_options.unwrap_or(false) {
                v["options"] = json!(options.remove(&cid).unwrap_or_default());
            }
            if include_associated {
                v["associatedOptions"] = json!(
                    mine.iter()
                        .map(|l| json!({
                            "optionId": l.option_id,
                            "optionText": option_text.get(&l.option_id.0).copied(),
                            "ordering": l.ordering,
                            "isActive": l.is_active,
                        }))
                        .collect::<Vec<_>>()
                );
            } else {
                v["associatedOptionIds"] =
                    json!(mine.iter().map(|l| l.option_id).collect::<Vec<_>>());
            }
            v
        })
        .collect())
}
