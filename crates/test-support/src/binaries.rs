//! Finding the server binaries the harness starts.

use std::path::PathBuf;

/// Where `scripts/setup.sh` installs tools that are not OS packages.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/switchboard-tools")
}

/// Finds `name`: `$SWITCHBOARD_<NAME>` first, then the tools folder, then `PATH`.
/// Panics with installation instructions when it is nowhere.
pub fn find_binary(name: &str) -> PathBuf {
    let env_key = format!("SWITCHBOARD_{}", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&env_key)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        return p;
    }
    let in_tools = tools_dir().join("bin").join(name);
    if in_tools.is_file() {
        return in_tools;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "`{name}` not found (looked at ${env_key}, {}, and PATH). \
             Install it with `scripts/setup.sh` (redis-server comes from the OS package \
             `redis-server`).",
            in_tools.display()
        )
    })
}
