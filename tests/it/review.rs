//! `orch diff`, `orch merge`, `orch discard` and `orch runs` on worktree runs, with real git.
//!
//! The runs are made by hand here ([`hand_run`]), as the engine makes them (a branch
//! `orch/<id>` and its worktree under `.orch/worktrees/`, the checkout's uncommitted changes as
//! the branch's first commit, one commit per accepted task made with a temporary index, and
//! the run's record and journal), so that these tests check the review commands alone, and
//! exactly.

mod discard;
mod hand_run;
mod merge;
mod uncommitted;
