//! Expansion checked against what `rpm --eval` prints.

#![allow(clippy::unwrap_used)]
use super::*;

fn table() -> MacroTable {
    let mut t = MacroTable::default();
    t.define("_bindir", None, "/usr/bin");
    t.load_macro_text(
        "%with() %{expand:%%{?with_%{1}:1}%%{!?with_%{1}:0}}\n%without() %{expand:%%{?with_%{1}:0}%%{!?with_%{1}:1}}\n",
    )
    .unwrap();
    t
}

fn ex(t: &mut MacroTable, s: &str) -> String {
    Expander::new(t).expand(s).unwrap()
}

/// What `rpm --eval` prints for each input, evaluated in order in one rpm
/// process (definitions made by one input are seen by the next, as in the
/// one table the expander below uses) with `_bindir` as in [`table`].
fn rpm_eval(inputs: &[&str]) -> Vec<String> {
    let mut cmd = std::process::Command::new("rpm");
    cmd.args(["--define", "_bindir /usr/bin"]);
    for input in inputs {
        cmd.arg("--eval").arg(input);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("running rpm --eval (install Debian's rpm: it is the oracle): {e}")
    });
    assert!(
        out.status.success(),
        "rpm --eval: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), inputs.len(), "one line per input: {text:?}");
    lines
}

#[test]
fn conditional_forms_match_rpm() {
    let inputs = [
        "%{!?nope}",
        "%{!?nope:X}",
        "%{?nope:X}",
        "%{nope}",
        "%nope",
        "%{?!nope:Y}",
        "%{!?_bindir:A}B",
        "%{?_bindir}",
        "%{expand:%%{_bindir}}",
        "%_bindir/x",
        "%{with foo}",
        "%{without foo}",
        "%[1+2]",
        "%[\"a\" < \"b\" ? 4 : 5]",
        "%{foo bar}",
        "a%{}b",
        "%%a",
        "%{dirname:/a/b/c}",
        "%{basename:/a/b/c}",
        "%{suffix:x.tar.gz}",
        "[%{lua: print(\"a\") print(\"b\")}]",
        "[%{lua: return \"x\"}]",
        "[%{lua: rpm.define(\"zzz 5\") print(rpm.expand(\"%zzz\"))}]",
        "[%{lua: print(rpm.isdefined(\"_bindir\"))}]",
        "[%{lua: print(macros._bindir)}]",
        "[%{lua: print(string.gsub(\"a-b\", \"-\", \"_\"))}]",
    ];
    let want = rpm_eval(&inputs);
    let mut t = table();
    for (input, want) in inputs.iter().zip(want) {
        assert_eq!(ex(&mut t, input), want, "{input}");
    }
}

#[test]
fn shell_expansion_is_not_run() {
    // A deliberate difference from rpm (which prints "hi"): specs are untrusted.
    assert_eq!(ex(&mut table(), "%(echo hi)"), "");
}

#[test]
fn parametric_macros_take_options_and_arguments() {
    let mut t = table();
    let mut e = Expander::new(&mut t);
    e.define_from(" ppp(n:) Q[%{-n*}|%1|%*|%#|%{?-n:has}]", false)
        .unwrap();
    assert_eq!(
        e.expand("%{ppp -n N one two}").unwrap(),
        "Q[N|one|one two|2|has]"
    );
    assert_eq!(
        e.expand("%ppp -n M three\nnext").unwrap(),
        "Q[M|three|three|1|has]\nnext"
    );
    assert_eq!(e.expand("%{ppp}").unwrap(), "Q[|%1||0|]");
    // Locals are gone after the call.
    assert_eq!(e.expand("%{?-n:x}%1").unwrap(), "%1");
}

#[test]
fn define_global_and_undefine() {
    let mut t = table();
    let mut e = Expander::new(&mut t);
    e.expand("%define aaa 1\n%global bbb %{aaa}2\n%define ccc %{aaa}3")
        .unwrap();
    e.table.define("aaa", None, "9");
    assert_eq!(e.expand("%bbb %ccc").unwrap(), "12 93");
    e.expand("%undefine aaa").unwrap();
    assert_eq!(e.expand("%aaa").unwrap(), "1");
    assert!(e.define_from(" 1ab x", false).is_err());
    assert!(e.define_from(" _ x", false).is_err());
    e.define_from(" abc a\\\\b", false).unwrap();
    assert_eq!(e.expand("X%{abc}Y").unwrap(), "Xa\\bY");
}

#[test]
fn lua_is_sandboxed_and_bounded() {
    let mut t = table();
    let mut e = Expander::new(&mut t);
    for escape in [
        "os.execute('true')",
        "io.open('/etc/passwd')",
        "posix.getpid()",
        "require('os')",
        "load('x=1')()",
    ] {
        assert!(
            matches!(
                e.expand(&format!("%{{lua: {escape}}}")),
                Err(MacroError::Lua(_))
            ),
            "{escape}"
        );
    }
    assert!(matches!(
        e.expand("%{lua: while true do end}"),
        Err(MacroError::Lua(_))
    ));
    assert!(matches!(
        e.expand("%{lua: local t = {} while true do t[#t+1] = string.rep('x', 1000) end}"),
        Err(MacroError::Lua(_))
    ));
    e.define_from(" pm(a) %{lua: print(opt.a, arg[1], #arg)}", false)
        .unwrap();
    assert_eq!(e.expand("[%pm -a 1 two]").unwrap(), "[\t1\t2");
    // Nested: Lua expanding a macro that runs Lua.
    e.define_from(" inner %{lua: print('in')}", false).unwrap();
    assert_eq!(
        e.expand("%{lua: print(rpm.expand('%inner') .. '-out')}")
            .unwrap(),
        "in-out"
    );
}

#[test]
fn recursion_is_an_error_not_a_hang() {
    let mut t = table();
    t.define("loop", None, "%{loop}x");
    assert!(matches!(
        Expander::new(&mut t).expand("%loop"),
        Err(MacroError::Recursion(_))
    ));
    t.define("bomb", None, "%{expand:%{bomb}%{bomb}}");
    assert!(Expander::new(&mut t).expand("%bomb").is_err());
}

#[test]
fn exponential_expansion_is_bounded() {
    let mut t = table();
    t.define("lol0", None, "xxxxxxxx");
    for i in 1..=40 {
        t.define(
            &format!("lol{i}"),
            None,
            &format!("%{{lol{p}}}%{{lol{p}}}", p = i - 1),
        );
    }
    let started = std::time::Instant::now();
    assert!(matches!(
        Expander::new(&mut t).expand("%lol40"),
        Err(MacroError::TooLarge(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn unterminated_brace_is_an_error() {
    let mut t = table();
    assert!(matches!(
        Expander::new(&mut t).expand("%{foo"),
        Err(MacroError::Unterminated('{', _))
    ));
}

#[test]
fn macro_files_continue_lines_inside_open_braces_like_rpm() {
    // The shape of Photon's macros.python: `%{expand:\\\` and a body that
    // runs over lines ending without a backslash until the brace closes.
    let text = "# comment\n%py3_build() %{expand:\\\\\\\n  CFLAGS=\"${CFLAGS:-x}\"\\\\\\\n  %{__python3} setup.py build %{?*}\n}\n\n%plain one \\\n  two\n%last 1";
    let mut t = table();
    t.load_macro_text(text).unwrap();
    // What `rpm --load FILE --eval '%{macrobody:py3_build}'` prints.
    assert_eq!(
        t.get("py3_build").unwrap().body,
        "%{expand:\\\n  CFLAGS=\"${CFLAGS:-x}\"\\\n  %{__python3} setup.py build %{?*}\n}"
    );
    assert_eq!(t.get("plain").unwrap().body, "one \n  two");
    assert_eq!(t.get("last").unwrap().body, "1");
    assert_eq!(
        macro_file_definitions("%a {\n\n%b 2").len(),
        2,
        "an empty line ends a definition"
    );
}
