//! The exam's rules, fast: an in-memory [`Exam`] (no store, no server) with the demo
//! package's session S1 open, driven by small scripts on an injected clock.
//!
//! A script is one command a line, `[h:]mm:ss command args`, the time since the session
//! opened (nothing waits: the rules take `now` as an argument). [`check`] runs it and
//! compares what happened with the expected text (`expect_test`: run with
//! `UPDATE_EXPECT=1` to rewrite the expectations after a deliberate change, then read the
//! diff). Each line of the result is the command, `=>`, its outcome and the events it
//! logged.
//!
//! Browsers are named by the participant's place in the S1 roster (`1`, `2`, ...); a
//! second browser of the same participant is `1b`. Commands:
//!
//! | command | rule |
//! |---|---|
//! | `login B` | [`Exam::login`] (the password was right) |
//! | `start B [tN\|wrong]` | [`Exam::start`] with the current token, the N-th S1 had, or a wrong one |
//! | `save B #K|#s|#m|@ID X[,Y] seq N [ragu]` | [`Exam::save`]: item K of the form, the first single / multiple-answer item, or a raw id; options by letter (`z`: not an option) |
//! | `finish B` | [`Exam::finish_by_participant`] |
//! | `left N` | time left of participant N's attempt |
//! | `answers N` | how many items participant N answered, marked *ragu*, and their seqs |
//! | `tick` | what the ticker does: [`Exam::auto_submit_due`], [`Exam::rotate_tokens`] |
//! | `down T` | [`Exam::credit_downtime`] with the last alive mark at time T |
//! | `pause` `resume` `close [force]` `reset N` `time N\|all M` `finish-by-proctor N` | [`Exam::proctor_action`] |

use std::fmt::Write;
use std::sync::OnceLock;

use expect_test::{Expect, expect};

use super::proctor::ProctorAction;
use super::*;
use crate::keys::{PublicKey, SecretKey, TrustSet};

/// The exam clock at `0:00` of every script.
const T0: i64 = 1_795_000_000_000;
const PKG: &str = "demo-kk-a-2026";

/// The demo package, opened once for all tests (verify, decrypt, unlock).
fn demo() -> &'static (Arc<SecretKey>, PackageInfo, Arc<OpenBank>) {
    static DEMO: OnceLock<(Arc<SecretKey>, PackageInfo, Arc<OpenBank>)> = OnceLock::new();
    DEMO.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("exam-packages");
        let key = SecretKey::read(&root.join("demo-keys/tuk.key")).expect("demo TUK key");
        let upt = PublicKey::read(&root.join("demo-keys/upt.pub")).expect("demo UPT key");
        let bytes = std::fs::read(root.join("demo.tukpkg")).expect("demo package");
        let pkg = package::verify(&bytes, &TrustSet::new(vec![upt])).expect("verifies");
        let contents = pkg.open(&key).expect("opens");
        let bank = pkg.unlock(&contents, None).expect("unlocks");
        let info = PackageInfo {
            header: pkg.header().clone(),
            file_hash: pkg.file_hash().to_string(),
            manifest: contents.manifest.clone(),
            roster: contents.roster.clone(),
            questionnaire: contents.questionnaire.clone(),
        };
        (Arc::new(key), info, Arc::new(OpenBank::new(bank)))
    })
}

/// An exam with the demo package imported and session S1 opened at `0:00` (token every
/// 15 minutes).
struct Lab {
    ex: Exam,
    skey: SessionKey,
    numbers: Vec<ParticipantNo>,
    now: i64,
    /// Every token S1 has had, in order (`t1` is the one it opened with).
    tokens: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        let (key, info, bank) = demo();
        let mut ex = Exam::empty(key.clone());
        for s in &info.manifest.sessions {
            let k = SessionKey::of(PKG, &s.id);
            ex.sessions
                .insert(k.clone(), Session::scheduled(k, PKG, &s.id));
        }
        ex.catalog.insert(PKG.to_string(), info.clone());
        ex.banks.insert(PKG.to_string(), bank.clone());
        let skey = SessionKey::of(PKG, "S1");
        ex.open_session(&skey, None, 15 * 60, Actor::Cli, T0)
            .expect("S1 opens");
        let numbers = info
            .roster
            .iter()
            .filter(|p| p.session == "S1")
            .map(|p| p.participant.clone())
            .collect();
        let mut lab = Lab {
            ex,
            skey,
            numbers,
            now: T0,
            tokens: Vec::new(),
        };
        lab.note_token();
        lab
    }

    /// Participant number of a browser name (`2`, `2b`) or a participant reference.
    fn number(&self, b: &str) -> ParticipantNo {
        let i: usize = b
            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse()
            .expect("a participant's place in the roster");
        // Past the roster: a number nobody has.
        self.numbers
            .get(i - 1)
            .cloned()
            .unwrap_or_else(|| format!("9999{i}").into())
    }

    fn attempt(&self, n: &str) -> Option<&Attempt> {
        self.ex
            .attempts
            .get(&AttemptKey::of(&self.skey, &self.number(n)))
    }

    fn note_token(&mut self) {
        if let Some(t) = &self.ex.sessions[&self.skey].token
            && self.tokens.last() != Some(&t.current)
        {
            self.tokens.push(t.current.clone());
        }
    }

    /// The token a `start` types: `tN` (the N-th S1 had), `wrong`, or the current one.
    fn token(&self, which: &str) -> String {
        if which == "wrong" {
            return "WRONG1".to_string();
        }
        match which
            .strip_prefix('t')
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => self.tokens[n - 1].clone(),
            None => self.ex.sessions[&self.skey]
                .token
                .as_ref()
                .map(|t| t.current.clone())
                .unwrap_or_default(),
        }
    }

    /// Item id and option ids of a `save` command's item and letters.
    fn choice(&self, b: &str, item: &str, letters: &str) -> (String, Vec<String>) {
        let Some(a) = self.attempt(b) else {
            return (item.to_string(), Vec::new());
        };
        let bank = &self.ex.banks[PKG];
        let kind_is = |f: &form::FormItem, multiple: bool| {
            bank.item(&f.item)
                .is_some_and(|i| (i.kind == package::model::ItemKind::Multiple) == multiple)
        };
        let f = match item {
            "#s" => a.form.iter().find(|f| kind_is(f, false)),
            "#m" => a.form.iter().find(|f| kind_is(f, true)),
            _ => item
                .strip_prefix('#')
                .and_then(|k| k.parse::<usize>().ok())
                .and_then(|k| a.form.get(k - 1)),
        };
        let Some(f) = f else {
            return (item.trim_start_matches('@').to_string(), Vec::new());
        };
        let options = letters
            .split(',')
            .map(|l| {
                let i = (l.as_bytes()[0] - b'a') as usize;
                f.options
                    .get(i)
                    .map_or_else(|| "zz".into(), |o| o.to_string())
            })
            .collect();
        (f.item.to_string(), options)
    }

    fn left(&self, n: &str) -> String {
        match self.attempt(n) {
            Some(a) => clock(a.remaining_ms(&self.ex.sessions[&self.skey], self.now)),
            None => "no attempt".into(),
        }
    }

    /// Runs one command; its outcome in words.
    fn run(&mut self, cmd: &str, args: &[&str]) -> (Vec<Put>, String) {
        let now = self.now;
        let arg = |i: usize| args.get(i).copied().unwrap_or("");
        let done = |r: Outcome<Vec<Put>>| match r {
            Ok(p) => (p, "ok".to_string()),
            Err(e) => (Vec::new(), format!("refused {e:?}")),
        };
        let proctor = |lab: &mut Lab, a: ProctorAction| {
            let skey = lab.skey.clone();
            done(
                lab.ex
                    .proctor_action(&skey, a, Actor::Staff("pengawas".into()), now),
            )
        };
        match cmd {
            "login" => {
                let n = self.number(arg(0));
                let (p, r) = self.ex.login(&n, &arg(0).into(), None, "10.0.0.1", now);
                (p, said(r.map(|()| "ok".to_string())))
            }
            "start" => {
                let token = self.token(arg(1));
                let (p, r) = self.ex.start(&arg(0).into(), &token, "10.0.0.1", now);
                let r = r.map(|s| format!("ok, {} left, {} items", clock(s.remaining_ms), s.items));
                (p, said(r))
            }
            "save" => {
                let (item, choice) = self.choice(arg(0), arg(1), arg(2));
                let seq = arg(4).parse().unwrap_or(0);
                let (p, r) =
                    self.ex
                        .save(&arg(0).into(), &item, choice, arg(5) == "ragu", seq, now);
                (p, said(r.map(|s| format!("saved seq {s}"))))
            }
            "finish" => {
                let (p, r) = self.ex.finish_by_participant(&arg(0).into(), now);
                (p, said(r.map(|_| "ok".to_string())))
            }
            "left" => (Vec::new(), self.left(arg(0))),
            "answers" => {
                let said = self.attempt(arg(0)).map_or("no attempt".into(), |a| {
                    let mut seqs: Vec<u64> = a.answers.values().map(|x| x.seq).collect();
                    seqs.sort();
                    format!(
                        "{} answered, {} ragu, seqs {seqs:?}",
                        a.answered(),
                        a.doubtful()
                    )
                });
                (Vec::new(), said)
            }
            "tick" => {
                let mut p = self.ex.auto_submit_due(now);
                p.extend(self.ex.rotate_tokens(now).unwrap_or_default());
                (p, "ok".into())
            }
            "down" => {
                let last = T0 + time(arg(0));
                (self.ex.credit_downtime(last, now), "ok".into())
            }
            "pause" => proctor(
                self,
                ProctorAction::Pause {
                    reason: "listrik padam".into(),
                },
            ),
            "resume" => proctor(self, ProctorAction::Resume),
            "close" => proctor(
                self,
                ProctorAction::Close {
                    force: arg(0) == "force",
                },
            ),
            "reset" => {
                let participant = self.number(arg(0));
                proctor(
                    self,
                    ProctorAction::ResetLogin {
                        participant,
                        reason: "Komputer mati / hang".into(),
                    },
                )
            }
            "time" => {
                let participant = (arg(0) != "all").then(|| self.number(arg(0)));
                let minutes = arg(1).parse().unwrap_or(0);
                proctor(
                    self,
                    ProctorAction::AddTime {
                        participant,
                        minutes,
                        reason: "PC mati".into(),
                    },
                )
            }
            "finish-by-proctor" => {
                let participant = self.number(arg(0));
                proctor(
                    self,
                    ProctorAction::ForceFinish {
                        participant,
                        reason: "sakit".into(),
                    },
                )
            }
            other => panic!("unknown command {other:?}"),
        }
    }
}

fn said(r: Outcome<String>) -> String {
    r.unwrap_or_else(|e| format!("refused {e:?}"))
}

/// `[h:]mm:ss` → ms.
fn time(s: &str) -> i64 {
    s.split(':')
        .try_fold(0i64, |acc, p| p.parse::<i64>().map(|v| acc * 60 + v))
        .expect("a time [h:]mm:ss")
        * 1000
}

/// ms → `[h:]mm:ss` (negative: `-mm:ss`).
fn clock(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let s = ms.abs() / 1000;
    if s >= 3600 {
        format!("{sign}{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{sign}{:02}:{:02}", s / 60, s % 60)
    }
}

/// Runs a script on a fresh lab and compares its transcript with `expect`.
fn check(script: &str, expect: Expect) {
    let mut lab = Lab::new();
    let mut out = String::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = line.split_whitespace();
        let at = words.next().expect("a time");
        lab.now = T0 + time(at);
        let cmd = words.next().expect("a command");
        let args: Vec<&str> = words.collect();
        let (puts, said) = lab.run(cmd, &args);
        lab.note_token();
        let logged: Vec<String> = puts
            .iter()
            .filter(|p| p.table() == Table::Events)
            .filter_map(|p| p.written())
            .filter_map(|v| serde_json::from_slice::<events::Record>(v).ok())
            .map(|r| r.event.kind())
            .collect();
        let _ = write!(out, "{line} => {said}");
        if !logged.is_empty() {
            let _ = write!(out, " [{}]", logged.join(", "));
        }
        out.push('\n');
    }
    expect.assert_eq(&out);
}

#[test]
fn saves_are_ordered_by_seq_and_idempotent() {
    check(
        "
        00:00 login 1
        00:00 start 1
        00:10 save 1 #s a seq 1
        00:11 save 1 #s b seq 3
        00:12 save 1 #s a seq 2
        00:13 save 1 #s b seq 3
        00:14 save 1 #s c seq 3
        00:15 save 1 #s a,b seq 4
        00:16 save 1 #m a,b seq 5 ragu
        00:16 answers 1
        00:17 save 1 #s z seq 6
        00:18 save 1 @NOT-ON-THE-FORM a seq 7
        00:19 save 1 #s a seq 0
        00:20 save 2 #s a seq 1
        ",
        expect![[r#"
            00:00 login 1 => ok [login]
            00:00 start 1 => ok, 1:30:00 left, 60 items [start]
            00:10 save 1 #s a seq 1 => saved seq 1 [answer]
            00:11 save 1 #s b seq 3 => saved seq 3 [answer]
            00:12 save 1 #s a seq 2 => refused StaleSeq
            00:13 save 1 #s b seq 3 => saved seq 3
            00:14 save 1 #s c seq 3 => refused StaleSeq
            00:15 save 1 #s a,b seq 4 => refused InvalidChoice
            00:16 save 1 #m a,b seq 5 ragu => saved seq 5 [answer]
            00:16 answers 1 => 2 answered, 1 ragu, seqs [3, 5]
            00:17 save 1 #s z seq 6 => refused InvalidChoice
            00:18 save 1 @NOT-ON-THE-FORM a seq 7 => refused UnknownItem
            00:19 save 1 #s a seq 0 => refused InvalidChoice
            00:20 save 2 #s a seq 1 => refused NotLoggedIn
        "#]],
    );
}

#[test]
fn deadline_grace_and_auto_submit() {
    check(
        "
        00:00 login 1
        00:00 start 1
        00:00 login 2
        00:00 start 2
        1:29:59 left 1
        1:30:04 save 1 #1 a seq 1
        1:30:05 tick
        1:30:05 save 1 #1 b seq 2
        1:30:06 save 1 #1 a seq 3
        1:30:06 tick
        1:30:07 finish 1
        1:30:07 save 2 #1 a seq 1
        1:30:07 left 2
        ",
        expect![[r#"
            00:00 login 1 => ok [login]
            00:00 start 1 => ok, 1:30:00 left, 60 items [start]
            00:00 login 2 => ok [login]
            00:00 start 2 => ok, 1:30:00 left, 60 items [start]
            1:29:59 left 1 => 00:01
            1:30:04 save 1 #1 a seq 1 => saved seq 1 [answer]
            1:30:05 tick => ok [token_rotated]
            1:30:05 save 1 #1 b seq 2 => saved seq 2 [answer]
            1:30:06 save 1 #1 a seq 3 => refused DeadlinePassed
            1:30:06 tick => ok [auto_submit, auto_submit]
            1:30:07 finish 1 => refused Finished
            1:30:07 save 2 #1 a seq 1 => refused Finished
            1:30:07 left 2 => 00:00
        "#]],
    );
}

#[test]
fn pause_stops_everyones_clock_and_resume_gives_it_back() {
    check(
        "
        00:00 login 1
        00:00 start 1
        10:00 pause
        10:00 left 1
        35:00 save 1 #1 a seq 1
        40:00 left 1
        40:00 login 2
        40:00 start 2
        2:00:00 tick
        2:00:00 left 1
        2:00:00 resume
        2:00:00 left 1
        2:00:00 start 2
        2:00:00 pause
        2:00:00 resume
        2:00:01 resume
        3:19:59 left 1
        3:20:06 tick
        ",
        expect![[r#"
            00:00 login 1 => ok [login]
            00:00 start 1 => ok, 1:30:00 left, 60 items [start]
            10:00 pause => ok [pause]
            10:00 left 1 => 1:20:00
            35:00 save 1 #1 a seq 1 => refused SessionPaused
            40:00 left 1 => 1:20:00
            40:00 login 2 => ok [login]
            40:00 start 2 => refused SessionPaused
            2:00:00 tick => ok
            2:00:00 left 1 => 1:20:00
            2:00:00 resume => ok [resume_session]
            2:00:00 left 1 => 1:20:00
            2:00:00 start 2 => ok, 1:30:00 left, 60 items [start]
            2:00:00 pause => ok [pause]
            2:00:00 resume => ok [resume_session]
            2:00:01 resume => refused NotPaused
            3:19:59 left 1 => 00:01
            3:20:06 tick => ok [auto_submit, token_rotated]
        "#]],
    );
}

#[test]
fn tokens_rotate_with_a_grace_for_the_previous_one() {
    check(
        "
        00:00 login 1
        00:00 login 2
        00:00 login 3
        00:00 login 4
        00:00 login 5
        14:59 tick
        15:00 tick
        15:00 start 1 t1
        17:00 start 2 t1
        17:01 start 3 t1
        17:01 start 3 wrong
        17:01 start 3 t2
        30:00 tick
        30:00 start 4 t1
        30:00 start 4 t2
        32:01 start 5 t2
        32:01 start 5 t3
        ",
        expect![[r#"
            00:00 login 1 => ok [login]
            00:00 login 2 => ok [login]
            00:00 login 3 => ok [login]
            00:00 login 4 => ok [login]
            00:00 login 5 => ok [login]
            14:59 tick => ok
            15:00 tick => ok [token_rotated]
            15:00 start 1 t1 => ok, 1:30:00 left, 60 items [start]
            17:00 start 2 t1 => ok, 1:30:00 left, 60 items [start]
            17:01 start 3 t1 => refused BadToken
            17:01 start 3 wrong => refused BadToken
            17:01 start 3 t2 => ok, 1:30:00 left, 60 items [start]
            30:00 tick => ok [token_rotated]
            30:00 start 4 t1 => refused BadToken
            30:00 start 4 t2 => ok, 1:30:00 left, 60 items [start]
            32:01 start 5 t2 => refused BadToken
            32:01 start 5 t3 => ok, 1:30:00 left, 60 items [start]
        "#]],
    );
}

#[test]
fn downtime_is_credited_to_running_attempts() {
    check(
        "
        00:00 login 1
        00:00 start 1
        10:00 left 1
        17:00 down 10:00
        17:00 left 1
        17:00 down 17:00
        18:00 down 17:59
        18:00 left 1
        ",
        expect![[r#"
            00:00 login 1 => ok [login]
            00:00 start 1 => ok, 1:30:00 left, 60 items [start]
            10:00 left 1 => 1:20:00
            17:00 down 10:00 => ok [downtime_credit]
            17:00 left 1 => 1:20:00
            17:00 down 17:00 => ok
            18:00 down 17:59 => ok [downtime_credit]
            18:00 left 1 => 1:19:01
        "#]],
    );
}

#[test]
fn pindah_pc_moves_the_attempt_with_its_answers_and_time() {
    check(
        "
        00:00 login 1
        00:00 start 1
        01:00 save 1 #1 a seq 1
        05:00 login 1b
        06:00 reset 1
        06:00 save 1 #1 b seq 2
        06:30 login 1b
        06:30 start 1b
        06:30 left 1
        06:30 answers 1
        07:00 save 1b #1 b seq 1
        07:00 save 1b #1 b seq 2
        07:00 reset 99
        ",
        expect![[r#"
            00:00 login 1 => ok [login]
            00:00 start 1 => ok, 1:30:00 left, 60 items [start]
            01:00 save 1 #1 a seq 1 => saved seq 1 [answer]
            05:00 login 1b => refused AlreadyActive [login_refused_active_elsewhere]
            06:00 reset 1 => ok [reset_login]
            06:00 save 1 #1 b seq 2 => refused NotLoggedIn
            06:30 login 1b => ok [login]
            06:30 start 1b => ok, 1:23:30 left, 60 items [resume]
            06:30 left 1 => 1:23:30
            06:30 answers 1 => 1 answered, 0 ragu, seqs [1]
            07:00 save 1b #1 b seq 1 => refused StaleSeq
            07:00 save 1b #1 b seq 2 => saved seq 2 [answer]
            07:00 reset 99 => refused NotRegistered
        "#]],
    );
}

#[test]
fn proctor_finishes_and_closes() {
    check(
        "
        00:00 login 1
        00:00 start 1
        00:00 login 2
        00:00 start 2
        00:00 login 3
        00:00 start 3
        10:00 finish-by-proctor 1
        10:00 finish-by-proctor 1
        10:00 save 1 #1 a seq 1
        11:00 time 2 5
        11:00 time 2 0
        11:00 time all 10
        11:00 left 2
        11:00 left 3
        12:00 finish 3
        20:00 close
        20:00 close force
        20:00 close force
        21:00 login 4
        21:00 start 4
        ",
        expect![[r#"
            00:00 login 1 => ok [login]
            00:00 start 1 => ok, 1:30:00 left, 60 items [start]
            00:00 login 2 => ok [login]
            00:00 start 2 => ok, 1:30:00 left, 60 items [start]
            00:00 login 3 => ok [login]
            00:00 start 3 => ok, 1:30:00 left, 60 items [start]
            10:00 finish-by-proctor 1 => ok [force_finish, force_finish_reason]
            10:00 finish-by-proctor 1 => refused Finished
            10:00 save 1 #1 a seq 1 => refused Finished
            11:00 time 2 5 => ok [time_credit]
            11:00 time 2 0 => refused InvalidInput
            11:00 time all 10 => ok [time_credit]
            11:00 left 2 => 1:34:00
            11:00 left 3 => 1:29:00
            12:00 finish 3 => ok [finish]
            20:00 close => refused AttemptsRunning
            20:00 close force => ok [force_finish, session_close]
            20:00 close force => refused NotOpen
            21:00 login 4 => ok [login]
            21:00 start 4 => refused BadToken
        "#]],
    );
}
