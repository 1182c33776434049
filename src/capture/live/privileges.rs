//! The privilege handling that makes `sudo iceview live` safe: which identity to become (`-Z USER`, the
//! sudo user, or `nobody`), then the drop itself as tcpdump does it — supplementary groups, group, user, in
//! the order that keeps the right to do each step — verified (real, effective and saved ids; root cannot be
//! regained); a process that captured thanks to file capabilities clears them instead. Through nix and caps,
//! no hand-written libc calls. It does not decide when to drop (`live` does, after the device is open and
//! before the first packet is read) nor open any file.
use super::LiveError;

/// Who the process becomes after opening the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub(crate) source: IdentitySource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdentitySource {
    /// `-Z USER`.
    Requested,
    /// The user who ran `sudo` (SUDO_UID/SUDO_GID).
    Sudo,
    /// Nobody asked: the least privileged account.
    Nobody,
}

impl Identity {
    /// Output files are created before the drop; they belong to the user the process becomes when that
    /// user was named (by `-Z` or by sudo), and stay root's when root ran iceview directly.
    pub fn owns_outputs(&self) -> bool {
        self.source != IdentitySource::Nobody && self.uid != 0
    }
}

/// The identity to drop to: `-Z USER` if given, else the sudo user (SUDO_UID/SUDO_GID as the caller read
/// them from the environment), else `nobody`. Only meaningful when running as root.
pub fn choose_identity(
    requested: Option<&str>,
    sudo_uid: Option<&str>,
    sudo_gid: Option<&str>,
) -> Result<Identity, LiveError> {
    if let Some(name) = requested {
        let (uid, gid) = user_by_name(name).ok_or_else(|| LiveError::NoSuchUser(name.to_string()))?;
        return Ok(Identity {
            name: name.to_string(),
            uid,
            gid,
            source: IdentitySource::Requested,
        });
    }
    if let Some(uid) = sudo_uid
        .and_then(|u| u.trim().parse::<u32>().ok())
        .filter(|&u| u != 0)
    {
        let by_uid = user_by_uid(uid);
        let gid = sudo_gid
            .and_then(|g| g.trim().parse::<u32>().ok())
            .or(by_uid.as_ref().map(|u| u.1));
        if let Some(gid) = gid {
            return Ok(Identity {
                name: by_uid.map_or_else(|| uid.to_string(), |u| u.0),
                uid,
                gid,
                source: IdentitySource::Sudo,
            });
        }
    }
    let (uid, gid) = user_by_name("nobody").ok_or_else(|| LiveError::Privileges {
        user: "nobody".into(),
        reason: "there is no user 'nobody' on this system; name one with -Z USER".into(),
    })?;
    Ok(Identity {
        name: "nobody".into(),
        uid,
        gid,
        source: IdentitySource::Nobody,
    })
}

/// What [`drop_privileges`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Privileges {
    /// Was root; is now `Identity` (real, effective and saved ids; no supplementary groups), verified.
    Dropped(Identity),
    /// Was root and `-Z root` asked to stay so.
    KeptRoot,
    /// Was not root (capabilities on the binary, or an unprivileged interface): any capabilities the
    /// process held are cleared, `cleared` says whether there were some.
    NotRoot { cleared_capabilities: bool },
}

/// Becomes `to` for good: supplementary groups cleared, then the group, then the user (the order that
/// still has the right to do each step), then checks that it stuck and that root cannot be regained.
pub fn drop_privileges(to: &Identity) -> Result<Privileges, LiveError> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    if !nix::unistd::geteuid().is_root() {
        return drop_capabilities();
    }
    if to.uid == 0 {
        return Ok(Privileges::KeptRoot);
    }
    let fail = |what: &str, e: nix::Error| LiveError::Privileges {
        user: to.name.clone(),
        reason: format!("{what}: {}", std::io::Error::from(e)),
    };
    setgroups(&[]).map_err(|e| fail("setgroups", e))?;
    setgid(Gid::from_raw(to.gid)).map_err(|e| fail("setgid", e))?;
    setuid(Uid::from_raw(to.uid)).map_err(|e| fail("setuid", e))?;
    verify_dropped(to).map_err(|reason| LiveError::Privileges {
        user: to.name.clone(),
        reason,
    })?;
    Ok(Privileges::Dropped(to.clone()))
}

/// For a process that is not root (it captured thanks to file capabilities): clears its capabilities,
/// which are no longer needed once the device is open.
pub fn drop_capabilities() -> Result<Privileges, LiveError> {
    let cleared_capabilities = clear_capabilities().map_err(|reason| LiveError::Privileges {
        user: current_user_name(),
        reason,
    })?;
    Ok(Privileges::NotRoot { cleared_capabilities })
}

fn verify_dropped(to: &Identity) -> Result<(), String> {
    use nix::unistd::{getegid, geteuid, getgid, getgroups, getuid, setuid, Gid, Uid};
    let (uid, gid) = (Uid::from_raw(to.uid), Gid::from_raw(to.gid));
    if getuid() != uid || geteuid() != uid {
        return Err("the user id did not change".into());
    }
    if getgid() != gid || getegid() != gid {
        return Err("the group id did not change".into());
    }
    if getgroups().is_ok_and(|g| !g.is_empty()) {
        return Err("supplementary groups remain".into());
    }
    #[cfg(target_os = "linux")]
    if !nix::unistd::getresuid().is_ok_and(|ids| ids.saved == uid) {
        return Err("the saved user id is still privileged".into());
    }
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err("root could be regained".into());
    }
    Ok(())
}

/// Clears every capability of the process (effective, permitted, inheritable; ambient follows): after
/// the device is open, CAP_NET_RAW is no longer needed. Returns whether there were any.
#[cfg(target_os = "linux")]
fn clear_capabilities() -> Result<bool, String> {
    use caps::CapSet;
    let mut held = false;
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        held |= !caps::read(None, set).map_err(|e| e.to_string())?.is_empty();
    }
    if !held {
        return Ok(false);
    }
    // Clearing the permitted set clears the effective one with it (caps::clear does both: a capability
    // cannot stay effective without being permitted).
    for set in [CapSet::Inheritable, CapSet::Permitted] {
        caps::clear(None, set).map_err(|e| e.to_string())?;
    }
    Ok(true)
}

#[cfg(not(target_os = "linux"))]
fn clear_capabilities() -> Result<bool, String> {
    Ok(false)
}

/// The name of the user the process runs as now (for messages).
pub fn current_user_name() -> String {
    let uid = nix::unistd::getuid().as_raw();
    user_by_uid(uid).map_or_else(|| uid.to_string(), |u| u.0)
}

/// (uid, gid) of a user name, from the password database (`None` when it has no such user, or cannot be
/// read).
fn user_by_name(name: &str) -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name(name).ok()??;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// (name, gid) of a user id.
fn user_by_uid(uid: u32) -> Option<(String, u32)> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
    Some((user.name, user.gid.as_raw()))
}
