//! The launcher confining itself, layer by layer, before it execs the worker. Every layer
//! is attempted and reported; the caller decides (by policy) whether what held is enough.

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, LandlockStatus, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use rustix::process::{Pid, Resource, Rlimit, Signal};
use rustix::thread::{CapabilitySet, CapabilitySets};

use super::{SandboxPolicy, SandboxReport, SandboxSpec};

/// The newest Landlock ABI whose rights we ask for; older kernels get what they know.
const ABI_WANTED: ABI = ABI::V6;

pub(super) fn confine(spec: &SandboxSpec) -> SandboxReport {
    let mut r = SandboxReport {
        policy: spec.policy,
        ..Default::default()
    };
    // A session of its own: the worker and everything it starts share one process group
    // (killed as one) and no controlling terminal.
    r.new_session = match rustix::process::setsid() {
        Ok(_) => true,
        Err(e) => {
            r.problems.push(format!("setsid: {e}"));
            false
        }
    };
    r.parent_death_signal = parent_death_signal(spec, &mut r);
    // Orphaned grandchildren are re-parented to the worker rather than to init, so the worker
    // sees (and the daemon can find and kill) everything a function started.
    r.child_subreaper = match rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
    {
        Ok(()) => true,
        Err(e) => {
            r.problems.push(format!("child subreaper: {e}"));
            false
        }
    };
    rlimits(spec, &mut r);
    r.no_new_privs = match rustix::thread::set_no_new_privs(true) {
        Ok(()) => true,
        Err(e) => {
            r.problems.push(format!("no_new_privs: {e}"));
            false
        }
    };
    if spec.policy == SandboxPolicy::Off {
        r.capabilities = "kept (policy off)".into();
        r.landlock = "off".into();
        return r;
    }
    r.capabilities = drop_capabilities(&mut r);
    landlock(spec, &mut r);
    r
}

fn parent_death_signal(spec: &SandboxSpec, r: &mut SandboxReport) -> bool {
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::KILL)) {
        r.problems.push(format!("parent-death signal: {e}"));
        return false;
    }
    // The daemon may have died between spawning us and the line above.
    if let Some(expected) = spec.parent_pid {
        let parent = rustix::process::getppid().map(Pid::as_raw_nonzero);
        if parent.map(|p| p.get()) != Some(expected) {
            r.problems
                .push("the daemon that started this worker is gone".into());
            return false;
        }
    }
    true
}

fn rlimits(spec: &SandboxSpec, r: &mut SandboxReport) {
    let both = |v: u64| Rlimit {
        current: Some(v),
        maximum: Some(v),
    };
    let mut set =
        |name: &str, res: Resource, lim: Rlimit| match rustix::process::setrlimit(res, lim) {
            Ok(()) => r.rlimits.push(format!(
                "{name}={}",
                lim.current.map_or("unlimited".into(), |v| v.to_string())
            )),
            Err(e) => r
                .problems
                .push(format!("RLIMIT_{}: {e}", name.to_uppercase())),
        };
    set("core", Resource::Core, both(0));
    if let Some(v) = spec.memory_bytes {
        set("data", Resource::Data, both(v));
    }
    if spec.cpu_soft_secs.is_some() || spec.cpu_hard_secs.is_some() {
        let hard = spec.cpu_hard_secs.or(spec.cpu_soft_secs);
        let soft = match (spec.cpu_soft_secs, hard) {
            (Some(s), Some(h)) => Some(s.min(h)),
            (s, h) => s.or(h),
        };
        set(
            "cpu",
            Resource::Cpu,
            Rlimit {
                current: soft,
                maximum: hard,
            },
        );
    }
    if let Some(v) = spec.open_files {
        set("nofile", Resource::Nofile, both(v));
    }
    if let Some(v) = spec.file_size_bytes {
        set("fsize", Resource::Fsize, both(v));
    }
}

/// Root keeps its capabilities across `exec` unless they leave the bounding set: without
/// this a worker running as root could raise its own hard limits (CAP_SYS_RESOURCE), signal
/// any process (CAP_KILL) or bypass file permissions (CAP_DAC_OVERRIDE).
fn drop_capabilities(r: &mut SandboxReport) -> String {
    let held = match rustix::thread::capabilities(None) {
        Ok(sets) => sets,
        Err(e) => return format!("not dropped: cannot read them: {e}"),
    };
    let mut bounding_failed = 0;
    for cap in CapabilitySet::all().iter() {
        if rustix::thread::capability_is_in_bounding_set(cap).unwrap_or(false)
            && rustix::thread::remove_capability_from_bounding_set(cap).is_err()
        {
            bounding_failed += 1;
        }
    }
    let _ = rustix::thread::clear_ambient_capability_set();
    let empty = CapabilitySets {
        effective: CapabilitySet::empty(),
        permitted: CapabilitySet::empty(),
        inheritable: CapabilitySet::empty(),
    };
    if let Err(e) = rustix::thread::set_capabilities(None, empty) {
        r.problems.push(format!("capabilities: {e}"));
        return format!("not dropped: {e}");
    }
    if bounding_failed > 0 && !held.permitted.is_empty() {
        r.problems.push(format!(
            "{bounding_failed} capabilities stay in the bounding set"
        ));
        return "dropped (bounding set partly)".into();
    }
    if held.permitted.is_empty() {
        "none held".into()
    } else {
        "dropped".into()
    }
}

fn landlock(spec: &SandboxSpec, r: &mut SandboxReport) {
    let result = (|| -> Result<landlock::RestrictionStatus, landlock::RulesetError> {
        // Best effort in every policy: an older kernel enforces the rights it knows, and the
        // report (checked against the policy) says how much held.
        Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(ABI_WANTED))?
            // Scoped (ABI 6): no signals to processes outside the sandbox (the daemon), no
            // connecting to abstract unix sockets made outside it.
            .scope(Scope::from_all(ABI_WANTED))?
            .create()?
            .add_rules(path_beneath_rules(
                &spec.read_only,
                AccessFs::from_read(ABI_WANTED),
            ))?
            .add_rules(path_beneath_rules(
                &spec.read_write,
                AccessFs::from_all(ABI_WANTED),
            ))?
            .restrict_self()
    })();
    match result {
        Ok(status) => {
            let abi = match status.landlock {
                LandlockStatus::Available { effective_abi, .. } => {
                    format!("ABI {}", effective_abi as i32)
                }
                LandlockStatus::NotEnabled => "not enabled in this kernel".into(),
                LandlockStatus::NotImplemented => "not built into this kernel".into(),
            };
            match status.ruleset {
                RulesetStatus::FullyEnforced => {
                    r.landlock = format!("enforced ({abi})");
                    r.landlock_enforced = true;
                }
                RulesetStatus::PartiallyEnforced => {
                    r.landlock = format!("partially enforced ({abi})");
                    r.landlock_enforced = true;
                }
                RulesetStatus::NotEnforced => {
                    r.landlock = format!("not enforced: {abi}");
                    r.problems.push(format!("landlock not enforced: {abi}"));
                }
            }
        }
        Err(e) => {
            r.landlock = format!("not enforced: {e}");
            r.problems.push(format!("landlock: {e}"));
        }
    }
}
