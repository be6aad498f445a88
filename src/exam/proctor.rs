//! What a proctor (*pengawas*) or the technician may do to a running session, as rules on
//! the exam state. Every action is appended to the session's event log with who did it, when
//! and why; none of them can change an answer.

use serde_json::json;

use super::*;

/// Reasons offered on the console for moving a participant to another PC.
pub const RESET_REASONS: [&str; 4] = [
    "Komputer mati / hang",
    "Browser tertutup atau rusak",
    "Pindah ke komputer cadangan",
    "Listrik padam",
];

impl Exam {
    fn running_session(&self, skey: &str) -> Outcome<&Session> {
        let s = self.sessions.get(skey).ok_or(BAD_INPUT)?;
        if !s.is_running() {
            return Err(SESSION_CLOSED);
        }
        Ok(s)
    }

    fn attempt_in(&self, skey: &str, number: &str) -> Outcome<&Attempt> {
        self.attempts
            .get(&attempt_key(skey, number))
            .ok_or(NOT_STARTED)
    }

    /// Moves a participant to another PC: the old browser's session ends, the attempt is
    /// free to be taken up by a new login, with every answer and the remaining time.
    pub fn reset_login(
        &mut self,
        skey: &str,
        number: &str,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let s = self.running_session(skey)?;
        let registered = self
            .catalog
            .get(&s.package)
            .is_some_and(|p| p.participant(number, &s.id).is_some());
        if !registered {
            return Err(NOT_REGISTERED);
        }
        let reason = clean_reason(reason)?;
        let mut puts = Vec::new();
        let old: Vec<String> = self
            .web
            .iter()
            .filter(|(_, w)| matches!(&w.who, Who::Participant { number: n, .. } if n == number))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &old {
            self.web.remove(k);
            puts.push(Put::delete(Table::WebSessions, k.clone()));
        }
        let akey = attempt_key(skey, number);
        if let Some(a) = self.attempts.get_mut(&akey) {
            a.browser = None;
            puts.push(Self::attempt_put(a));
        }
        self.logins.forget_account(number);
        self.live.remove(&akey);
        puts.push(self.log(
            skey,
            now,
            "reset_login",
            actor,
            json!({"participant": number, "reason": reason, "browsers_ended": old.len()}),
        ));
        Ok(puts)
    }

    /// Gives one participant time back (their PC died for 7 minutes) or extra time.
    pub fn add_time(
        &mut self,
        skey: &str,
        number: Option<&str>,
        minutes: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        self.running_session(skey)?;
        let reason = clean_reason(reason)?;
        if !(1..=240).contains(&minutes) {
            return Err(BAD_INPUT);
        }
        // One participant whose work was already collected: say so (the console words it
        // for the proctor), rather than "not started".
        if let Some(n) = number
            && self.attempt_in(skey, n).is_ok_and(|a| !a.is_running())
        {
            return Err(FINISHED);
        }
        let mut puts = Vec::new();
        let mut who = Vec::new();
        for a in self.attempts.values_mut() {
            let target =
                a.session == skey && a.is_running() && number.is_none_or(|n| a.participant == n);
            if target {
                a.deadline_ms += minutes * 60_000;
                who.push(a.participant.clone());
                puts.push(Self::attempt_put(a));
            }
        }
        if who.is_empty() {
            return Err(NOT_STARTED);
        }
        puts.push(self.log(
            skey,
            now,
            "time_credit",
            actor,
            json!({"participants": who, "minutes": minutes, "reason": reason}),
        ));
        Ok(puts)
    }

    /// Stops the clock for everyone in the session (a power cut).
    pub fn pause(&mut self, skey: &str, reason: &str, actor: &str, now: i64) -> Outcome<Vec<Put>> {
        let reason = clean_reason(reason)?;
        let s = self.sessions.get_mut(skey).ok_or(BAD_INPUT)?;
        let SessionStatus::Open { opened_ms } = s.status else {
            return Err(Refusal::new(409, "not_open"));
        };
        s.status = SessionStatus::Paused {
            opened_ms,
            since_ms: now,
        };
        let put = Put::json(Table::Sessions, skey, &*s);
        let ev = self.log(skey, now, "pause", actor, json!({"reason": reason}));
        Ok(vec![put, ev])
    }

    /// Restarts the clock: every running attempt keeps exactly the time it had at the pause.
    pub fn resume(&mut self, skey: &str, actor: &str, now: i64) -> Outcome<Vec<Put>> {
        let s = self.sessions.get_mut(skey).ok_or(BAD_INPUT)?;
        let SessionStatus::Paused {
            opened_ms,
            since_ms,
        } = s.status
        else {
            return Err(Refusal::new(409, "not_paused"));
        };
        s.status = SessionStatus::Open { opened_ms };
        let mut puts = vec![Put::json(Table::Sessions, skey, &*s)];
        let paused_ms = now - since_ms;
        for a in self.attempts.values_mut() {
            if a.session == skey && a.is_running() {
                a.deadline_ms += paused_ms;
                puts.push(Self::attempt_put(a));
            }
        }
        puts.push(self.log(
            skey,
            now,
            "resume_session",
            actor,
            json!({"paused_ms": paused_ms}),
        ));
        Ok(puts)
    }

    /// Ends one participant's attempt on the proctor's decision (with a reason).
    pub fn force_finish(
        &mut self,
        skey: &str,
        number: &str,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let reason = clean_reason(reason)?;
        let akey = self.attempt_in(skey, number)?.key.clone();
        let mut puts = self.finish(&akey, FinishedBy::Proctor, actor, now)?;
        puts.push(self.log(
            skey,
            now,
            "force_finish_reason",
            actor,
            json!({"participant": number, "reason": reason}),
        ));
        Ok(puts)
    }

    /// Closes a session. Refused while attempts are running unless `force`, which
    /// submits them (recorded as forced by the proctor).
    pub fn close_session(
        &mut self,
        skey: &str,
        force: bool,
        actor: &str,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let running: Vec<String> = self
            .attempts
            .values()
            .filter(|a| a.session == skey && a.is_running())
            .map(|a| a.key.clone())
            .collect();
        let s = self.sessions.get(skey).ok_or(BAD_INPUT)?;
        let opened_ms = match s.status {
            SessionStatus::Open { opened_ms } | SessionStatus::Paused { opened_ms, .. } => {
                opened_ms
            }
            _ => return Err(Refusal::new(409, "not_open")),
        };
        if !running.is_empty() && !force {
            return Err(Refusal::new(409, "attempts_running"));
        }
        let mut puts = Vec::new();
        for k in running {
            puts.extend(self.finish(&k, FinishedBy::Proctor, actor, now)?);
        }
        if let Some(s) = self.sessions.get_mut(skey) {
            s.status = SessionStatus::Closed {
                opened_ms,
                closed_ms: now,
            };
            s.token = None;
            puts.push(Put::json(Table::Sessions, skey, &*s));
        }
        puts.push(self.log(skey, now, "session_close", actor, json!({"forced": force})));
        Ok(puts)
    }

    /// Attendance as the proctor records it (present/absent), in the log and the session.
    pub fn mark_attendance(
        &mut self,
        skey: &str,
        number: &str,
        present: bool,
        actor: &str,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let s = self.sessions.get(skey).ok_or(BAD_INPUT)?;
        let registered = self
            .catalog
            .get(&s.package)
            .is_some_and(|p| p.participant(number, &s.id).is_some());
        if !registered {
            return Err(NOT_REGISTERED);
        }
        let s = self.sessions.get_mut(skey).ok_or(BAD_INPUT)?;
        s.attendance.insert(number.to_string(), present);
        let put = Put::json(Table::Sessions, skey, &*s);
        let ev = self.log(
            skey,
            now,
            "attendance",
            actor,
            json!({"participant": number, "present": present}),
        );
        Ok(vec![put, ev])
    }
}

impl Exam {
    /// Assigns (or unassigns) a proctor account to a session. Admin only (checked by the
    /// console).
    pub fn assign_proctor(
        &mut self,
        skey: &str,
        user: &str,
        assign: bool,
        actor: &str,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        if !self
            .users
            .get(user)
            .is_some_and(|u| u.role == Role::Proctor)
        {
            return Err(Refusal::new(422, "no_such_proctor"));
        }
        let s = self.sessions.get_mut(skey).ok_or(BAD_INPUT)?;
        s.proctors.retain(|p| p != user);
        if assign {
            s.proctors.push(user.to_string());
        }
        let put = Put::json(Table::Sessions, skey, &*s);
        let ev = self.log(
            skey,
            now,
            "proctor_assign",
            actor,
            json!({"proctor": user, "assigned": assign}),
        );
        Ok(vec![put, ev])
    }
}

impl Exam {
    /// Saves the proctor's notes to the minutes; `confirm` seals them (no more edits).
    pub fn save_minutes(
        &mut self,
        skey: &str,
        notes: &str,
        confirm: bool,
        actor: &str,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        if notes.chars().count() > 10_000 {
            return Err(BAD_INPUT);
        }
        let s = self.sessions.get_mut(skey).ok_or(BAD_INPUT)?;
        // Confirmed minutes must not change afterwards: the incidents stop with the close.
        if confirm && !matches!(s.status, SessionStatus::Closed { .. }) {
            return Err(Refusal::new(409, "session_running"));
        }
        if s.minutes.as_ref().is_some_and(|m| m.confirmed_by.is_some()) {
            return Err(Refusal::new(409, "minutes_confirmed"));
        }
        s.minutes = Some(Minutes {
            notes: notes.trim().to_string(),
            confirmed_by: confirm.then(|| actor.to_string()),
            confirmed_ms: confirm.then_some(now),
        });
        let put = Put::json(Table::Sessions, skey, &*s);
        let kind = if confirm {
            "minutes_confirmed"
        } else {
            "minutes_saved"
        };
        let ev = self.log(skey, now, kind, actor, json!({"notes": notes.trim()}));
        Ok(vec![put, ev])
    }
}

/// Reasons are short free text, stored in the log and printed in the minutes.
fn clean_reason(reason: &str) -> Outcome<String> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 200 {
        return Err(Refusal::new(422, "reason_required"));
    }
    Ok(r.to_string())
}
