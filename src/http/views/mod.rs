//! The documented shapes of the views the services assemble as JSON (the hierarchies, the
//! paper, the answer sheet, the user status, the report, `/plugins`, ...).
//!
//! These types are never built: the services write the views directly, field by field, with
//! upstream's names. They exist so the OpenAPI document says what each response holds, and
//! generated clients get a model for it. `tests/it/schemas.rs` checks real responses against
//! them both ways (no documented field missing or mistyped, no field sent undocumented).
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::enums::{
    AttemptResult, AttemptStatus, AttemptsGrading, GradingType, QuestionLevel, QuestionStatus,
    QuestionType, ReviewStatus,
};
use crate::domain::scoring::Answer;
use crate::store::assessments::{Section, Test};
use crate::store::attempts::Attempt;
use crate::store::rules::Rule;

mod learner;
mod operator;
mod reviews;
pub use learner::*;
pub use operator::*;
pub use reviews::*;
