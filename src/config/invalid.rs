//! What start-up says about a setting it refused.

/// One line for a setting clap refused: the environment variable first (how the service is
/// configured), its flag, the value, why, and the values allowed when there is a list.
pub fn setting(e: &clap::Error, cli: &clap::Command) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let (arg, value) = (
        text(ContextKind::InvalidArg),
        text(ContextKind::InvalidValue),
    );
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    // clap's line: "error: invalid value 'abc' for '--port <PORT>': why" (the why is optional).
    let why = first
        .split_once(&format!("'{arg}'"))
        .map(|(_, rest)| rest.trim_start_matches(':').trim().to_string())
        .unwrap_or_default();
    let long = arg
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches("--");
    let env = std::iter::once(cli)
        .chain(cli.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env().map(|v| v.to_string_lossy().into_owned()));
    let allowed = match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(v)) if !v.is_empty() => format!(" (allowed: {})", v.join(", ")),
        _ => String::new(),
    };
    let name = match env {
        Some(env) => format!("{env} (--{long})"),
        None if arg.is_empty() => return first.trim_start_matches("error: ").to_string(),
        None => arg.clone(),
    };
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(": {why}")
    };
    format!("{name}: invalid value '{value}'{why}{allowed}")
}
