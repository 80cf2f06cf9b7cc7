//! The rpm core macros a spec parser needs before any spec line is read:
//! directory layout, architecture lists and the conditional-build helpers.
//! They follow rpm 4.18's own `macros` and `platform/<arch>-linux/macros`
//! files, so that specs see the same values under dbuild as under rpmbuild.
//! Distribution macro files (`--macros-file`) are loaded on top.

/// rpm's generic macros (architecture independent).
const CORE: &str = r#"
%nil %{!?nil}
%defined() %{expand:%%{?%{1}:1}%%{!?%{1}:0}}
%undefined() %{expand:%%{?%{1}:0}%%{!?%{1}:1}}
%bcond() %[ (%2)\
    ? "%{expand:%%{!?_without_%{1}:%%global with_%{1} 1}}"\
    : "%{expand:%%{?_with_%{1}:%%global with_%{1} 1}}"\
]
%bcond_with() %bcond %{1} 0
%bcond_without() %bcond %{1} 1
%with() %{expand:%%{?with_%{1}:1}%%{!?with_%{1}:0}}
%without() %{expand:%%{?with_%{1}:0}%%{!?with_%{1}:1}}
%_usr /usr
%_var /var
%_prefix /usr
%_exec_prefix %{_prefix}
%_bindir %{_exec_prefix}/bin
%_sbindir %{_exec_prefix}/sbin
%_libexecdir %{_exec_prefix}/libexec
%_datarootdir %{_prefix}/share
%_datadir %{_datarootdir}
%_sysconfdir /etc
%_sharedstatedir /var/lib
%_localstatedir /var
%_libdir %{_prefix}/%{_lib}
%_includedir %{_prefix}/include
%_oldincludedir /usr/include
%_infodir %{_datarootdir}/info
%_mandir %{_datarootdir}/man
%_initddir %{_sysconfdir}/rc.d/init.d
%_rundir /run
%_defaultdocdir %{_datadir}/doc
%_defaultlicensedir %{_datadir}/licenses
%_docdir %{_defaultdocdir}
%_tmppath %{_var}/tmp
%_usrsrc %{_usr}/src
%_topdir %{getenv:HOME}/rpmbuild
%_builddir %{_topdir}/BUILD
%_rpmdir %{_topdir}/RPMS
%_srcrpmdir %{_topdir}/SRPMS
%_specdir %{_topdir}/SPECS
%_buildrootdir %{_topdir}/BUILDROOT
%buildroot %{_buildrootdir}/%{NAME}-%{VERSION}-%{RELEASE}.%{_arch}
%_rpmconfigdir /usr/lib/rpm
%_buildshell /bin/sh
%_vendor pc
%_os linux
%_gnu -gnu
%_build_os %{_os}
%_host_os %{_os}
%_target_os %{_os}
%_host_cpu %{_target_cpu}
%_build_cpu %{_target_cpu}
%_build_arch %{_arch}
%_host %{_target_cpu}-%{_vendor}-%{_target_os}%{?_gnu}
%_build %{_host}
%_target %{_host}
%_target_platform %{_target_cpu}-%{_vendor}-%{_target_os}
%_smp_mflags -j1
%ix86 i386 i486 i586 i686 pentium3 pentium4 athlon geode
%arm32 armv3l armv4b armv4l armv4tl armv5tl armv5tel armv5tejl armv6l armv6hl armv7l armv7hl armv7hnl armv8l armv8hl armv8hnl armv8hcnl
%arm %{arm32}
%arm64 aarch64
%mips32 mips mipsel mipsr6 mipsr6el
%mips64 mips64 mips64el mips64r6 mips64r6el
%mips %{mips32} %{mips64}
%sparc sparc sparcv8 sparcv9 sparcv9v sparc64 sparc64v
%alpha alpha alphaev56 alphaev6 alphaev67
%power64 ppc64 ppc64p7 ppc64le
%riscv64 riscv64
%riscv %{riscv64}
%x86_64 x86_64 amd64 em64t
%loongarch64 loongarch64
%_isa %{?__isa:(%{__isa})}%{!?__isa:%{nil}}
%_host_vendor pc
%_build_vendor %{_host_vendor}
%_target_vendor %{_host_vendor}
%_host_alias %{nil}
%_build_alias %{_host_alias}
%_target_alias %{_host_alias}
%_rpmmacrodir %{_rpmconfigdir}/macros.d
%_rpmluadir %{_rpmconfigdir}/lua
%optflags -O2 -g
%_smp_build_ncpus 1
%_smp_build_nthreads %{_smp_build_ncpus}
%__awk /usr/bin/awk
%__bzip2 /usr/bin/bzip2
%__cat /usr/bin/cat
%__cc gcc
%__chmod /usr/bin/chmod
%__chown /usr/bin/chown
%__cp /usr/bin/cp
%__cpp gcc -E
%__cxx g++
%__grep /usr/bin/grep
%__gzip /usr/bin/gzip
%__id /usr/bin/id
%__install /usr/bin/install
%__ld /usr/bin/ld
%__ln_s ln -s
%__make /usr/bin/make
%__mkdir /usr/bin/mkdir
%__mkdir_p /usr/bin/mkdir -p
%__mv /usr/bin/mv
%__patch /usr/bin/patch
%__rm /usr/bin/rm
%__sed /usr/bin/sed
%__strip /usr/bin/strip
%__tar /usr/bin/tar
%__unzip /usr/bin/unzip
%__xz /usr/bin/xz
%__zstd /usr/bin/zstd
%_debuginfo_template \
%package debuginfo\
Summary: Debug information for package %{name}\
Group: Development/Debug\
AutoReq: 0\
AutoProv: 1\
%description debuginfo\
This package provides debug information for package %{name}.\
Debug information is useful when developing applications that use this\
package or when debugging this package.\
%files debuginfo -f debugfiles.list\
%{nil}
%_debugsource_template \
%package debugsource\
Summary: Debug sources for package %{name}\
Group: Development/Debug\
AutoReqProv: 0\
%description debugsource\
This package provides debug sources for package %{name}.\
Debug sources are useful when developing applications that use this\
package or when debugging this package.\
%files debugsource -f debugsourcefiles.list\
%{nil}
%debug_package \
%ifnarch noarch\
%global __debug_package 1\
%_debuginfo_template\
%{?_debugsource_packages:%_debugsource_template}\
%endif\
%{nil}
"#;

/// The macros that depend on the target architecture and OS.
pub fn platform_macros(arch: &str, os: &str) -> String {
    let bits64 = matches!(
        arch,
        "x86_64"
            | "amd64"
            | "aarch64"
            | "ppc64"
            | "ppc64le"
            | "ppc64p7"
            | "s390x"
            | "riscv64"
            | "sparc64"
            | "mips64"
            | "mips64el"
            | "loongarch64"
    );
    let isa_name = match arch {
        "x86_64" | "amd64" | "i386" | "i486" | "i586" | "i686" => "x86",
        "aarch64" => "aarch",
        a if a.starts_with("ppc") => "ppc",
        a => a,
    };
    format!(
        "%_arch {arch}\n%_target_cpu {arch}\n%_target_os {os}\n%_os {os}\n%_lib {lib}\n%__isa_name {isa_name}\n%__isa_bits {bits}\n%__isa %{{__isa_name}}-%{{__isa_bits}}\n",
        lib = if bits64 { "lib64" } else { "lib" },
        bits = if bits64 { 64 } else { 32 },
    )
}

pub fn core_macros() -> &'static str {
    CORE
}
