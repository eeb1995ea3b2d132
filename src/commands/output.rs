//! How plans are shown to the user: a summary and the execution waves.

use std::fmt::Write as _;

use crate::plan::{self, Plan};

/// The plan as waves of tasks: which run together, with their agent and files.
pub(crate) fn plan_summary(plan: &Plan) -> String {
    let waves = plan::waves(plan);
    let mut out = String::new();
    let files: usize = plan.tasks.iter().map(|t| t.files.len()).sum();
    let _ = writeln!(
        out,
        "{} spec(s), {} task(s), {} file(s), {} wave(s)",
        plan.specs.len(),
        plan.tasks.len(),
        files,
        waves.len()
    );
    for spec in &plan.specs {
        let _ = writeln!(
            out,
            "  spec {}  {}",
            spec.file,
            first_line(&spec.description, 60)
        );
    }
    for (i, wave) in waves.iter().enumerate() {
        let _ = writeln!(out, "wave {}:", i + 1);
        for id in wave {
            let Some(task) = plan.task(id) else { continue };
            let deps = if task.depends_on.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = task.depends_on.iter().map(ToString::to_string).collect();
                format!("  (after {})", ids.join(", "))
            };
            let _ = writeln!(
                out,
                "  task {} [{}] {}{deps}\n      files: {}",
                task.id,
                task.agent,
                first_line(&task.task, 70),
                task.files.join(", ")
            );
        }
    }
    out
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max - 1).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}
