//! Runs the specification's exhaustive check at a size given on the command line.
use usbpm_spec::run::{check, size_named, QUICK};
use usbpm_spec::{Size, SpecMutant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut size = QUICK;
    let mut mutants_size = false;
    let mut symmetry = true;
    let mut mutant = None;
    let mut threads = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            // The mutants' size is applied after every other argument.
            "mutants" => mutants_size = true,
            "--no-symmetry" => symmetry = false,
            "--threads" => threads = it.next().and_then(|v| v.parse().ok()).expect("--threads N"),
            "--mutant" => mutant = SpecMutant::from_name(it.next().expect("--mutant NAME")),
            "--size" => {
                let v: Vec<u8> = it
                    .next()
                    .expect("--size c,h,t,changes,reentrant,panics,queries[,preregistered[,callback_reports[,rearrivals[,shutdown[,power_requests[,granted[,detaches]]]]]]]]")
                    .split(',')
                    .map(|x| x.parse().unwrap())
                    .collect();
                size = Size {
                    clients: v[0],
                    hubs: v[1],
                    threads: v[2],
                    changes: v[3],
                    removal: true,
                    reentrant: v[4],
                    panics: v[5],
                    queries: v[6],
                    preregistered: v.get(7) == Some(&1),
                    callback_reports: v.get(8).copied().unwrap_or(0),
                    rearrivals: v.get(9).copied().unwrap_or(0),
                    shutdown: v.get(10) == Some(&1),
                    power_requests: v.get(11).copied().unwrap_or(0),
                    granted: v.get(12).copied().unwrap_or(0),
                    detaches: v.get(13).copied().unwrap_or(0),
                };
            }
            other => match size_named(other) {
                Some(named) => size = named,
                None => panic!("unknown argument {other}"),
            },
        }
    }
    if mutants_size {
        size = usbpm_spec::run::MUTANTS;
    }
    let o = check(size, mutant, symmetry, threads);
    println!("{}", o.summary());
    for (p, path) in &o.violated {
        println!("VIOLATED {p}\n{path}");
    }
    for p in &o.unwitnessed {
        println!("UNWITNESSED {p}");
    }
}
