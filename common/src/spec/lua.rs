//! `%{lua:...}`: rpm's embedded Lua, in a sandbox.
//!
//! rpm runs Lua with its full standard library plus `posix` and `rpm`
//! modules. A spec is untrusted input, so here Lua gets only the pure
//! libraries (`string`, `table`, `math`, `utf8`), the macro functions of
//! the `rpm` module (`expand`, `define`, `undefine`, `isdefined`,
//! `vercmp`), the `macros` table, and `arg`/`opt` inside parametric
//! macros. No `os`, `io`, `posix`, `require` or `load`: a script that
//! reaches for them fails with an error naming the spec line. Memory and
//! the number of instructions per call are bounded.

use super::macros::{Expander, MacroError};
use crate::evr::rpmvercmp;
use mlua::{HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Value, VmState};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const MEMORY_LIMIT: usize = 64 << 20;
const INSTRUCTIONS_PER_CALL: u64 = 50_000_000;
const HOOK_EVERY: u32 = 10_000;

/// One Lua state per spec (rpm keeps one per run: globals persist between calls).
#[derive(Clone)]
pub struct LuaState {
    lua: Lua,
    executed: Arc<AtomicU64>,
}

impl std::fmt::Debug for LuaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LuaState")
    }
}

fn lua_error(e: mlua::Error) -> MacroError {
    MacroError::Lua(e.to_string().lines().next().unwrap_or_default().to_string())
}

impl LuaState {
    pub fn new() -> Result<Self, MacroError> {
        let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8;
        let lua = Lua::new_with(libs, LuaOptions::default()).map_err(lua_error)?;
        lua.set_memory_limit(MEMORY_LIMIT).map_err(lua_error)?;
        let executed = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&executed);
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if counter.fetch_add(u64::from(HOOK_EVERY), Ordering::Relaxed)
                    > INSTRUCTIONS_PER_CALL
                {
                    return Err(mlua::Error::runtime("lua: instruction limit reached"));
                }
                Ok(VmState::Continue)
            },
        )
        .map_err(lua_error)?;
        // Globals rpm's Lua has but a sandbox must not.
        for name in ["dofile", "loadfile", "load", "require", "collectgarbage"] {
            lua.globals().set(name, Value::Nil).map_err(lua_error)?;
        }
        Ok(LuaState { lua, executed })
    }

    /// Runs `code`; what it prints (and returns) is the expansion.
    pub fn run(
        &self,
        code: &str,
        ex: &mut Expander<'_>,
        args: Option<&CallArgs>,
    ) -> Result<String, MacroError> {
        self.executed.store(0, Ordering::Relaxed);
        let lua = &self.lua;
        let globals = lua.globals();
        let saved: Vec<(&str, Value)> = ["rpm", "macros", "print", "arg", "opt"]
            .into_iter()
            .map(|n| (n, globals.get::<Value>(n).unwrap_or(Value::Nil)))
            .collect();
        let output = RefCell::new(String::new());
        let ex = RefCell::new(ex);
        let result = lua.scope(|scope| {
            let ex = &ex;
            let output = &output;
            let borrow = move || {
                ex.try_borrow_mut()
                    .map_err(|_| mlua::Error::runtime("rpm: re-entrant macro call"))
            };
            let rpm = lua.create_table()?;
            rpm.set(
                "expand",
                scope.create_function(move |_, text: String| {
                    borrow()?.expand(&text).map_err(mlua::Error::external)
                })?,
            )?;
            rpm.set(
                "define",
                scope.create_function(move |_, text: String| {
                    borrow()?
                        .define_from(&text, false)
                        .map(drop)
                        .map_err(mlua::Error::external)
                })?,
            )?;
            rpm.set(
                "undefine",
                scope.create_function(move |_, name: String| {
                    borrow()?.table.undefine(&name);
                    Ok(())
                })?,
            )?;
            rpm.set(
                "isdefined",
                scope.create_function(move |_, name: String| {
                    let e = borrow()?;
                    let def = e.table.get(&name);
                    Ok((def.is_some(), def.is_some_and(|d| d.opts.is_some())))
                })?,
            )?;
            rpm.set(
                "vercmp",
                scope.create_function(move |_, (a, b): (String, String)| {
                    Ok(rpmvercmp(&a, &b) as i64)
                })?,
            )?;
            globals.set("rpm", rpm)?;
            let macros = lua.create_table()?;
            let meta = lua.create_table()?;
            meta.set(
                "__index",
                scope.create_function(move |_, (_, name): (Value, String)| {
                    let mut e = borrow()?;
                    if e.table.get(&name).is_none() {
                        return Ok(None);
                    }
                    e.expand(&format!("%{{{name}}}"))
                        .map(Some)
                        .map_err(mlua::Error::external)
                })?,
            )?;
            meta.set(
                "__newindex",
                scope.create_function(move |_, (_, name, value): (Value, String, String)| {
                    borrow()?.table.define(&name, None, &value);
                    Ok(())
                })?,
            )?;
            macros.set_metatable(Some(meta))?;
            globals.set("macros", macros)?;
            globals.set(
                "print",
                scope.create_function(move |_, values: MultiValue| {
                    let parts: Vec<String> = values
                        .iter()
                        .map(|v| v.to_string().unwrap_or_default())
                        .collect();
                    output.borrow_mut().push_str(&parts.join("\t"));
                    Ok(())
                })?,
            )?;
            if let Some(a) = args {
                let arg = lua.create_sequence_from(a.positional.iter().cloned())?;
                let opt = lua.create_table()?;
                for (flag, value) in &a.options {
                    opt.set(flag.to_string(), value.clone())?;
                }
                globals.set("arg", arg)?;
                globals.set("opt", opt)?;
            }
            let returned: MultiValue = lua.load(code).set_name("<lua>").eval()?;
            for v in returned {
                if !v.is_nil() {
                    output.borrow_mut().push_str(&v.to_string()?);
                }
            }
            Ok(())
        });
        for (name, value) in saved {
            let _ = globals.set(name, value);
        }
        result.map_err(lua_error)?;
        Ok(output.into_inner())
    }
}

/// The arguments of the parametric macro a Lua chunk runs in.
#[derive(Debug, Clone, Default)]
pub struct CallArgs {
    pub positional: Vec<String>,
    pub options: Vec<(char, String)>,
}
