//! (being written)
pub fn run(_prompt_file: &std::path::Path) -> anyhow::Result<i32> {
    anyhow::bail!("the scripted agent is not built yet")
}
