//! The wasmtime side: one process-wide engine (pooling allocator, fuel), the linker with the
//! denied-by-default WASI p2 context and `host.log`, and [`Loaded`]: a compiled plugin with its
//! pool of configured instances.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView,
    WasiView,
};

use crate::error::{LoadError, PluginError};
use crate::spec::{Capability, Metadata, Mode, PluginSpec, MAX_MEMORY_MIB};

/// Contract 0.2 (`plugins/wit/plugin.wit`): spans and strings mode.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../plugins/wit/plugin.wit",
        world: "plugin",
    });
}

/// Contract 0.2.1's `policy` world (tail-sampling policies), sharing the `types` and `host`
/// interfaces of [`bindings`] (so the linker defines `host` once for both worlds).
mod bindings_policy {
    wasmtime::component::bindgen!({
        path: "../../plugins/wit/plugin.wit",
        world: "policy",
        with: {
            "spoor:plugin/types": super::bindings::spoor::plugin::types,
            "spoor:plugin/host": super::bindings::spoor::plugin::host,
        },
    });
}

/// Contract 0.1 (`plugins/wit/v0.1/plugin.wit`): spans mode only; still loaded.
mod bindings_v01 {
    wasmtime::component::bindgen!({
        path: "../../plugins/wit/v0.1/plugin.wit",
        world: "plugin",
    });
}

use bindings::spoor::plugin::{host, types};
use bindings_v01::spoor::plugin::{host as host_v01, types as types_v01};

/// The contract version this host implements (the WIT package version).
pub const CONTRACT_VERSION: &str = "0.2.1";

/// Older contract versions this host still loads (their plugins run in spans mode).
pub const OLDER_CONTRACT_VERSIONS: &[&str] = &["0.1.0"];

/// The strings view as it crosses the boundary.
pub(crate) type WitStringsView = types::StringsView;

/// A compiled, linked component of one of the contract versions.
#[derive(Clone)]
enum Pre {
    V02(bindings::PluginPre<State>),
    V01(bindings_v01::PluginPre<State>),
    Policy(bindings_policy::PolicyPre<State>),
}

/// The exports of one instance.
enum Exports {
    V02(bindings::Plugin),
    V01(bindings_v01::Plugin),
    Policy(bindings_policy::Policy),
}

/// Component instances the pooling allocator holds at once, over all plugins.
const POOL_INSTANCES: u32 = 512;

/// Idle configured instances kept per plugin; more are created under contention and dropped
/// when returned to a full pool. Read once: `available_parallelism` reads cgroup files (a few
/// system calls, ~15 µs), and every call gives its instance back.
fn max_idle() -> usize {
    static MAX_IDLE: OnceLock<usize> = OnceLock::new();
    *MAX_IDLE.get_or_init(|| std::thread::available_parallelism().map_or(4, |n| n.get() * 2))
}

/// The process-wide engine: compiled code and pooled slots are shared by every chain.
pub(crate) fn engine() -> Result<&'static Engine, LoadError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(POOL_INSTANCES)
                .total_core_instances(POOL_INSTANCES * 4)
                .total_memories(POOL_INSTANCES)
                .total_tables(POOL_INSTANCES * 2)
                .total_stacks(POOL_INSTANCES)
                .max_memory_size(MAX_MEMORY_MIB as usize * (1 << 20))
                .max_core_instances_per_component(16)
                .max_memories_per_component(4)
                .max_tables_per_component(8);
            let mut config = Config::new();
            config.consume_fuel(true);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool.clone()));
            match Engine::new(&config) {
                Ok(engine) => Ok(engine),
                Err(pooled) => {
                    // Without the address space for the pool (tight `ulimit -v`), fall back to
                    // on-demand allocation: slower instantiation, same limits.
                    tracing::warn!(error = %pooled, "plugin runtime: pooling allocator unavailable, allocating on demand");
                    config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                    Engine::new(&config).map_err(|e| e.to_string())
                }
            }
        })
        .as_ref()
        .map_err(|e| LoadError::Engine(e.clone()))
}

fn linker(engine: &'static Engine) -> Result<&'static Linker<State>, LoadError> {
    static LINKER: OnceLock<Result<Linker<State>, String>> = OnceLock::new();
    LINKER
        .get_or_init(|| {
            let mut linker = Linker::new(engine);
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| e.to_string())?;
            no_sleeping(&mut linker).map_err(|e| e.to_string())?;
            bindings::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
                .map_err(|e| e.to_string())?;
            bindings_v01::Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
                .map_err(|e| e.to_string())?;
            Ok(linker)
        })
        .as_ref()
        .map_err(|e| LoadError::Engine(e.clone()))
}

/// The monotonic clock's version in wasmtime-wasi 48 (guests importing older 0.2.x match it).
const WASI_CLOCKS: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces the timers of `wasi:clocks/monotonic-clock` with pollables that are ready at once:
/// fuel does not run while the host waits, so a plugin that sleeps would otherwise hold a
/// pipeline thread for as long as it likes.
fn no_sleeping(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(WASI_CLOCKS)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut cx: wasmtime::StoreContextMut<'_, State>, (_,): (u64,)| ready(cx.data_mut()),
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut cx: wasmtime::StoreContextMut<'_, State>, (_,): (u64,)| ready(cx.data_mut()),
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A pollable that is always ready.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

fn ready(state: &mut State) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let ready = state.table.push(Ready)?;
    Ok((subscribe(&mut state.table, ready)?,))
}

/// Per-instance host state.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    plugin: Arc<str>,
    log: bool,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for State {}

impl types_v01::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: host::Level, message: String) {
        if !self.log {
            return;
        }
        let plugin = &*self.plugin;
        match level {
            host::Level::Debug => tracing::debug!(plugin, "{message}"),
            host::Level::Info => tracing::info!(plugin, "{message}"),
            host::Level::Warn => tracing::warn!(plugin, "{message}"),
            host::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl host_v01::Host for State {
    fn log(&mut self, level: host_v01::Level, message: String) {
        let level = match level {
            host_v01::Level::Debug => host::Level::Debug,
            host_v01::Level::Info => host::Level::Info,
            host_v01::Level::Warn => host::Level::Warn,
            host_v01::Level::Error => host::Level::Error,
        };
        host::Host::log(self, level, message);
    }
}

/// [`StoreLimits`] that remembers whether it refused a growth, so a trap that follows (Rust
/// guests abort when allocation fails) is reported as out of memory.
struct Limits {
    inner: StoreLimits,
    refused: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        self.refused |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.table_growing(current, desired, maximum)?;
        self.refused |= !ok;
        Ok(ok)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Both clocks read 0 and never advance.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}

/// A fixed pseudo-random byte cycle (splitmix64 from a constant seed): deterministic across
/// runs and instances, not all zeros. Computed once; each instance gets a copy.
fn fixed_random() -> Deterministic {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| {
        let mut x: u64 = 0x5EED_5EED_5EED_5EED;
        let mut bytes = Vec::with_capacity(4096);
        while bytes.len() < 4096 {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes
    });
    Deterministic::new(bytes.clone())
}

/// The WASI context of one instance: no files, no sockets, no name lookup, no environment, no
/// arguments, closed stdin, discarded stdout and stderr; frozen clocks and fixed randomness
/// unless granted.
fn wasi_ctx(grants: &[Capability]) -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .max_random_size(1 << 20);
    if !grants.contains(&Capability::Clock) {
        b.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
    }
    if !grants.contains(&Capability::Random) {
        b.secure_random(fixed_random())
            .insecure_random(fixed_random())
            .insecure_random_seed(0x5EED);
    }
    b.build()
}

/// One instance with its store; used by one call at a time.
pub(crate) struct Instance {
    store: Store<State>,
    plugin: Exports,
}

/// How one instance is made: everything needed besides the compiled component.
#[derive(Clone)]
struct Recipe {
    name: Arc<str>,
    grants: Vec<Capability>,
    memory_bytes: usize,
    fuel: u64,
    memory_mib: u32,
}

impl Recipe {
    fn instantiate(&self, pre: &Pre) -> Result<Instance, PluginError> {
        let engine = match pre {
            Pre::V02(pre) => pre.engine(),
            Pre::V01(pre) => pre.engine(),
            Pre::Policy(pre) => pre.engine(),
        };
        let state = State {
            wasi: wasi_ctx(&self.grants),
            table: ResourceTable::new(),
            limits: Limits {
                inner: StoreLimitsBuilder::new()
                    .memory_size(self.memory_bytes)
                    .instances(16)
                    .build(),
                refused: false,
            },
            plugin: self.name.clone(),
            log: self.grants.contains(&Capability::Log),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(self.fuel)
            .map_err(|e| PluginError::Instantiate(e.to_string()))?;
        let plugin = match pre {
            Pre::V02(pre) => pre.instantiate(&mut store).map(Exports::V02),
            Pre::V01(pre) => pre.instantiate(&mut store).map(Exports::V01),
            Pre::Policy(pre) => pre.instantiate(&mut store).map(Exports::Policy),
        };
        match plugin {
            Ok(plugin) => Ok(Instance { store, plugin }),
            Err(e) => Err(classify(e, &store, self.fuel, self.memory_mib)),
        }
    }
}

/// Turns a wasmtime error from instantiation into a [`PluginError`].
fn classify(e: wasmtime::Error, store: &Store<State>, fuel: u64, memory_mib: u32) -> PluginError {
    if e.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        PluginError::OutOfFuel { fuel }
    } else if store.data().limits.refused {
        PluginError::OutOfMemory {
            cap_mib: memory_mib,
        }
    } else {
        PluginError::Trap(format!("{e:#}"))
    }
}

/// Turns a wasmtime error from a call of an export into a [`PluginError`]: as [`classify`],
/// except that an error that is neither a trap nor an exit is the canonical ABI refusing what
/// the guest handed back (a string that is not UTF-8, a list pointer outside its memory, an
/// unknown variant case): malformed output.
fn classify_call(
    e: wasmtime::Error,
    store: &Store<State>,
    fuel: u64,
    memory_mib: u32,
) -> PluginError {
    let lifted =
        e.downcast_ref::<Trap>().is_none() && e.downcast_ref::<wasmtime_wasi::I32Exit>().is_none();
    match classify(e, store, fuel, memory_mib) {
        PluginError::Trap(message) if lifted => PluginError::MalformedOutput(message),
        other => other,
    }
}

impl Instance {
    /// Runs `f` with fresh fuel; a wasmtime error (trap) is classified, and the caller must
    /// then discard the instance.
    fn call<R>(
        &mut self,
        recipe: &Recipe,
        f: impl FnOnce(&Exports, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.store.data_mut().limits.refused = false;
        self.store
            .set_fuel(recipe.fuel)
            .map_err(|e| PluginError::Trap(e.to_string()))?;
        f(&self.plugin, &mut self.store)
            .map_err(|e| classify_call(e, &self.store, recipe.fuel, recipe.memory_mib))
    }
}

/// A loaded plugin: compiled once, pre-linked, with a pool of configured instances.
pub(crate) struct Loaded {
    pub(crate) spec: PluginSpec,
    pub(crate) metadata: Metadata,
    pub(crate) stamp: Option<FileStamp>,
    pre: Pre,
    recipe: Recipe,
    config_json: String,
    idle: Mutex<Vec<Instance>>,
}

/// What identifies a version of a plugin file on disk (for reload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

/// Compiles `path` and links it; no instance yet.
fn compile(plugin: &str, path: &Path) -> Result<(Pre, Option<FileStamp>), LoadError> {
    let engine = engine()?;
    let linker = linker(engine)?;
    let stamp = FileStamp::of(path);
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        plugin: plugin.into(),
        path: path.into(),
        source,
    })?;
    let invalid = |message: String| LoadError::Invalid {
        plugin: plugin.into(),
        path: path.into(),
        message,
    };
    let component = compiled(engine, bytes).map_err(|e| invalid(format!("{e:#}")))?;
    check_contract_version(plugin, path, &component, engine)?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| invalid(format!("{e:#}")))?;
    // The exports tell the versions and worlds apart: 0.2 adds `process-strings`, a policy
    // exports `decide` instead of `process`.
    let pre = match bindings::PluginPre::new(pre.clone()) {
        Ok(pre) => Pre::V02(pre),
        Err(v02) => match bindings_v01::PluginPre::new(pre.clone()) {
            Ok(pre) => Pre::V01(pre),
            Err(_) => match bindings_policy::PolicyPre::new(pre) {
                Ok(pre) => Pre::Policy(pre),
                Err(_) => {
                    return Err(invalid(format!(
                        "{v02:#} (nor the policy world: no `decide` export)"
                    )))
                }
            },
        },
    };
    Ok((pre, stamp))
}

/// Compiles component bytes, reusing the result for identical bytes (a chain reloaded with
/// unchanged files, `check` then `run` of the same file). Keeps the last few components.
fn compiled(engine: &Engine, bytes: Vec<u8>) -> wasmtime::Result<Component> {
    const KEEP: usize = 32;
    static CACHE: Mutex<Vec<(Vec<u8>, Component)>> = Mutex::new(Vec::new());
    let hit = CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(b, _)| *b == bytes)
        .map(|(_, c)| c.clone());
    if let Some(component) = hit {
        return Ok(component);
    }
    let component = Component::new(engine, &bytes)?;
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= KEEP {
        cache.remove(0);
    }
    cache.push((bytes, component.clone()));
    Ok(component)
}

/// A component importing `spoor:plugin/*@X` with X of another major version (minor while
/// 0.x) is refused with both versions named.
fn check_contract_version(
    plugin: &str,
    path: &Path,
    component: &Component,
    engine: &Engine,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let Some(rest) = name.strip_prefix("spoor:plugin/") else {
            continue;
        };
        let Some((_, found)) = rest.split_once('@') else {
            continue;
        };
        let known = std::iter::once(&CONTRACT_VERSION)
            .chain(OLDER_CONTRACT_VERSIONS)
            .any(|v| compatibility_key(found) == compatibility_key(v));
        if !known {
            return Err(LoadError::Version {
                plugin: plugin.into(),
                path: path.into(),
                found: found.into(),
                expected: CONTRACT_VERSION,
            });
        }
    }
    Ok(())
}

/// Semver compatibility: the major version, or `0.minor` while the major is 0.
fn compatibility_key(version: &str) -> (String, String) {
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next().unwrap_or_default().to_string();
    let minor = if major == "0" {
        parts.next().unwrap_or_default().to_string()
    } else {
        String::new()
    };
    (major, minor)
}

fn convert_metadata_v01(m: types_v01::Metadata) -> Metadata {
    Metadata {
        name: m.name,
        version: m.version,
        mode: Mode::Spans,
        capabilities: m
            .capabilities
            .into_iter()
            .map(|c| match c {
                types_v01::Capability::Clock => Capability::Clock,
                types_v01::Capability::Random => Capability::Random,
                types_v01::Capability::Log => Capability::Log,
            })
            .collect(),
    }
}

fn convert_metadata(m: types::Metadata) -> Metadata {
    Metadata {
        name: m.name,
        version: m.version,
        mode: match m.mode {
            types::Mode::Spans => Mode::Spans,
            types::Mode::Strings => Mode::Strings,
        },
        capabilities: m
            .capabilities
            .into_iter()
            .map(|c| match c {
                types::Capability::Clock => Capability::Clock,
                types::Capability::Random => Capability::Random,
                types::Capability::Log => Capability::Log,
            })
            .collect(),
    }
}

fn convert_policy_metadata(m: types::PolicyMetadata) -> Metadata {
    convert_metadata(types::Metadata {
        name: m.name,
        version: m.version,
        capabilities: m.capabilities,
        mode: types::Mode::Spans,
    })
    .into_policy()
}

fn refusal(e: types::PluginError) -> PluginError {
    match e {
        types::PluginError::InvalidConfig(m) => {
            PluginError::Refused(format!("invalid-config: {m}"))
        }
        types::PluginError::Failed(m) => PluginError::Refused(format!("failed: {m}")),
    }
}

fn refusal_v01(e: types_v01::PluginError) -> PluginError {
    match e {
        types_v01::PluginError::InvalidConfig(m) => {
            PluginError::Refused(format!("invalid-config: {m}"))
        }
        types_v01::PluginError::Failed(m) => PluginError::Refused(format!("failed: {m}")),
    }
}

/// Reads the metadata of the component at `path` without configuring it (every capability
/// granted, default limits).
pub(crate) fn check(path: &Path) -> Result<Metadata, LoadError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut spec = PluginSpec::new(name, path);
    spec.grant = Capability::ALL.to_vec();
    let (pre, _) = compile(&spec.name, path)?;
    let recipe = Recipe::from_spec(&spec);
    let mut instance = recipe
        .instantiate(&pre)
        .map_err(|e| start_error(&spec, format!("instantiation failed: {e}")))?;
    metadata_of(&spec, &recipe, &mut instance)
}

fn start_error(spec: &PluginSpec, message: String) -> LoadError {
    LoadError::Start {
        plugin: spec.name.clone(),
        path: spec.path.clone(),
        message,
    }
}

fn metadata_of(
    spec: &PluginSpec,
    recipe: &Recipe,
    instance: &mut Instance,
) -> Result<Metadata, LoadError> {
    let m = instance
        .call(recipe, |p, s| match p {
            Exports::V02(p) => p.call_metadata(s).map(convert_metadata),
            Exports::V01(p) => p.call_metadata(s).map(convert_metadata_v01),
            Exports::Policy(p) => p.call_metadata(s).map(convert_policy_metadata),
        })
        .map_err(|e| start_error(spec, format!("metadata failed: {e}")))?;
    let valid_name = !m.name.is_empty()
        && m.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_name {
        return Err(start_error(
            spec,
            format!("metadata name {:?} is not [a-z0-9-]+", m.name),
        ));
    }
    Ok(m)
}

impl Recipe {
    fn from_spec(spec: &PluginSpec) -> Recipe {
        Recipe {
            name: spec.name.as_str().into(),
            grants: spec.grant.clone(),
            memory_bytes: spec.memory_mib as usize * (1 << 20),
            fuel: spec.fuel,
            memory_mib: spec.memory_mib,
        }
    }
}

impl Loaded {
    /// Compiles, instantiates once, reads metadata (refusing ungranted capabilities) and
    /// configures that first instance, which becomes the first idle one.
    /// `config_text` replaces the spec's `config` as the text `configure` receives (the CLI
    /// passes a settings file verbatim, so the plugin's error positions point into it).
    /// `accept` sees the metadata before anything else is asked of the plugin (a pipeline
    /// refuses a policy, and a policy slot a pipeline plugin, before configuring it).
    pub(crate) fn load(
        spec: &PluginSpec,
        config_text: Option<&str>,
        accept: impl FnOnce(&Metadata) -> Result<(), LoadError>,
    ) -> Result<Loaded, LoadError> {
        spec.validate().map_err(|message| LoadError::Spec {
            plugin: spec.name.clone(),
            message,
        })?;
        let (pre, stamp) = compile(&spec.name, &spec.path)?;
        let recipe = Recipe::from_spec(spec);
        let mut first = recipe
            .instantiate(&pre)
            .map_err(|e| start_error(spec, format!("instantiation failed: {e}")))?;
        let metadata = metadata_of(spec, &recipe, &mut first)?;
        accept(&metadata)?;
        if let Some(&capability) = metadata
            .capabilities
            .iter()
            .find(|c| !spec.grant.contains(c))
        {
            return Err(LoadError::CapabilityDenied {
                plugin: spec.name.clone(),
                path: spec.path.clone(),
                capability,
                granted: spec.grant.clone(),
            });
        }
        let config_json = config_text.map_or_else(|| spec.config_json(), str::to_string);
        configure(&recipe, &mut first, &config_json).map_err(|error| LoadError::Configure {
            plugin: spec.name.clone(),
            path: spec.path.clone(),
            error,
        })?;
        Ok(Loaded {
            spec: spec.clone(),
            metadata,
            stamp,
            pre,
            recipe,
            config_json,
            idle: Mutex::new(vec![first]),
        })
    }

    /// A configured instance: an idle one, or a new one.
    fn take(&self) -> Result<Instance, PluginError> {
        if let Some(instance) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(instance);
        }
        self.fresh()
    }

    /// A new, configured instance (never from the idle pool).
    pub(crate) fn fresh(&self) -> Result<Instance, PluginError> {
        let mut instance = self.recipe.instantiate(&self.pre)?;
        configure(&self.recipe, &mut instance, &self.config_json)?;
        Ok(instance)
    }

    fn give_back(&self, instance: Instance) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < max_idle() {
            idle.push(instance);
        }
    }

    /// Runs `process` on an encoded batch. The output's size is checked here; its encoding
    /// is checked by the caller. A trapped instance is dropped, others go back to the pool.
    #[allow(clippy::ptr_arg)] // the generated binding takes `&Vec<u8>`
    pub(crate) fn process(&self, batch: &Vec<u8>) -> Result<Vec<u8>, PluginError> {
        let mut instance = self.take()?;
        match self.process_on(&mut instance, batch) {
            Ok(out) => {
                self.give_back(instance);
                Ok(out)
            }
            Err((e, reusable)) => {
                if reusable {
                    self.give_back(instance);
                }
                Err(e)
            }
        }
    }

    /// `process` on a given instance; the error says whether the instance may be reused.
    #[allow(clippy::ptr_arg)] // the generated binding takes `&Vec<u8>`
    pub(crate) fn process_on(
        &self,
        instance: &mut Instance,
        batch: &Vec<u8>,
    ) -> Result<Vec<u8>, (PluginError, bool)> {
        let out = instance
            .call(&self.recipe, |p, s| match p {
                Exports::V02(p) => p.call_process(s, batch).map(|r| r.map_err(refusal)),
                Exports::V01(p) => p.call_process(s, batch).map(|r| r.map_err(refusal_v01)),
                Exports::Policy(_) => Ok(Err(PluginError::Refused(
                    "failed: a policy plugin has no process".into(),
                ))),
            })
            .map_err(|e| (e, false))?
            .map_err(|e| (e, true))?;
        let cap = self.spec.output_cap(batch.len());
        if out.len() as u64 > cap {
            return Err((
                PluginError::OutputTooLarge {
                    bytes: out.len() as u64,
                    cap,
                },
                true,
            ));
        }
        Ok(out)
    }
}

impl Loaded {
    /// Runs `process-strings` on a strings view and checks the patches against it (indexes,
    /// kinds, order, the output cap over the replacement text). A trapped instance is dropped,
    /// others go back to the pool.
    pub(crate) fn process_strings(
        &self,
        view: &WitStringsView,
    ) -> Result<spoor_plugin_strings::Patches, PluginError> {
        let mut instance = self.take()?;
        let called = instance.call(&self.recipe, |p, s| match p {
            Exports::V02(p) => p.call_process_strings(s, view).map(|r| r.map_err(refusal)),
            Exports::V01(_) => Ok(Err(PluginError::Refused(
                "failed: a contract 0.1 plugin has no process-strings".into(),
            ))),
            Exports::Policy(_) => Ok(Err(PluginError::Refused(
                "failed: a policy plugin has no process-strings".into(),
            ))),
        });
        let flat = match called {
            Ok(Ok(patches)) => {
                self.give_back(instance);
                patches
            }
            Ok(Err(refused)) => {
                self.give_back(instance);
                return Err(refused);
            }
            Err(trapped) => return Err(trapped),
        };
        let cap = self.spec.output_cap(view.text.len());
        // The size cap first: the replacement text is one string, its size known before any
        // patch is read.
        if flat.text.len() as u64 > cap {
            return Err(PluginError::OutputTooLarge {
                bytes: flat.text.len() as u64,
                cap,
            });
        }
        let patches = spoor_plugin_strings::Patches {
            text: flat.text,
            ops: flat.ops,
        };
        check_patches(view, &patches, cap)?;
        Ok(patches)
    }
}

impl Loaded {
    /// Runs a policy plugin's `decide` on one trace's block encoding: `true` when it samples.
    /// A trapped instance is dropped, others go back to the pool.
    #[allow(clippy::ptr_arg)] // the generated binding takes `&Vec<u8>`
    pub(crate) fn decide(&self, trace: &Vec<u8>) -> Result<bool, PluginError> {
        let mut instance = self.take()?;
        let called = instance.call(&self.recipe, |p, s| match p {
            Exports::Policy(p) => p.call_decide(s, trace).map(|r| r.map_err(refusal)),
            _ => Ok(Err(PluginError::Refused(
                "failed: a pipeline plugin has no decide".into(),
            ))),
        });
        match called {
            Ok(result) => {
                self.give_back(instance);
                result.map(|v| v == types::Verdict::Sampled)
            }
            Err(trapped) => Err(trapped),
        }
    }
}

/// [`spoor_plugin_strings::check_flat_with`] on the WIT view, as a typed error: the form of
/// every patch (whole, known op, its text a slice of the replacement text), then indexes in
/// range and strictly ascending, ops that fit the kinds, the output cap.
fn check_patches(
    view: &WitStringsView,
    patches: &spoor_plugin_strings::Patches,
    cap: u64,
) -> Result<(), PluginError> {
    use spoor_plugin_strings::PatchError;
    let len = view.records.len() / spoor_plugin_strings::WORDS;
    let kind = |i: u32| {
        view.records
            .get((i as usize).saturating_mul(spoor_plugin_strings::WORDS) + 2)
            .and_then(|&w| spoor_plugin_strings::Kind::from_word(w))
    };
    match spoor_plugin_strings::check_flat_with(len, kind, patches, cap) {
        Ok(()) => Ok(()),
        Err(PatchError::TooLarge { bytes, cap }) => Err(PluginError::OutputTooLarge { bytes, cap }),
        Err(e) => Err(PluginError::MalformedOutput(e.to_string())),
    }
}

fn configure(
    recipe: &Recipe,
    instance: &mut Instance,
    config_json: &str,
) -> Result<(), PluginError> {
    instance.call(recipe, |p, s| match p {
        Exports::V02(p) => p.call_configure(s, config_json).map(|r| r.map_err(refusal)),
        Exports::V01(p) => p
            .call_configure(s, config_json)
            .map(|r| r.map_err(refusal_v01)),
        Exports::Policy(p) => p.call_configure(s, config_json).map(|r| r.map_err(refusal)),
    })?
}

#[cfg(test)]
mod tests {
    use super::compatibility_key;

    #[test]
    fn contract_versions_are_compatible_by_semver() {
        let ours = compatibility_key("0.1.0");
        assert_eq!(compatibility_key("0.1.7"), ours);
        assert_eq!(compatibility_key("0.1.0-rc.1"), ours);
        assert_ne!(compatibility_key("0.2.0"), ours);
        assert_ne!(compatibility_key("1.1.0"), ours);
        assert_eq!(compatibility_key("1.2.0"), compatibility_key("1.9.1"));
        assert_ne!(compatibility_key("1.2.0"), compatibility_key("2.2.0"));
    }
}
