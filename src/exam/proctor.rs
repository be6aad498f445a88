//! What a proctor (*pengawas*) or the technician may do to a running session, as rules on
//! the exam state. Every action is appended to the session's event log with who did it, when
//! and why; none of them can change an answer.

use super::*;

/// Reasons offered on the console for moving a participant to another PC.
pub(crate) const RESET_REASONS: [&str; 4] = [
    "Komputer mati / hang",
    "Browser tertutup atau rusak",
    "Pindah ke komputer cadangan",
    "Listrik padam",
];

/// One thing a proctor does to a running session from the board, with its arguments
/// (the console parses its form into this once; opening a session is not here because it
/// unlocks the item bank off the writer first, see `App::open_session`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProctorAction {
    /// Stop everyone's clock (a power cut).
    Pause { reason: String },
    /// Restart it; every running attempt keeps the time it had.
    Resume,
    /// Close the session; `force` submits attempts still running.
    Close { force: bool },
    /// *Pindah PC*: end the participant's browser sessions, keep answers and time.
    ResetLogin {
        participant: ParticipantNo,
        reason: String,
    },
    /// Give time (1–240 minutes) to one participant, or to all running (`None`).
    AddTime {
        participant: Option<ParticipantNo>,
        minutes: i64,
        reason: String,
    },
    /// Submit one participant's attempt on the proctor's decision.
    ForceFinish {
        participant: ParticipantNo,
        reason: String,
    },
    /// Mark a participant present or absent.
    Attendance {
        participant: ParticipantNo,
        present: bool,
    },
    /// Lift the login locks an address caused.
    UnlockLogin { ip: String },
    /// Assign or unassign a proctor account (admin only: the console checks the role).
    AssignProctor { proctor: String, assign: bool },
}

impl Exam {
    /// Runs one proctor action on session `skey`, logged with `actor`.
    pub(crate) fn proctor_action(
        &mut self,
        skey: &SessionKey,
        action: ProctorAction,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        match action {
            ProctorAction::Pause { reason } => self.pause(skey, &reason, actor, now),
            ProctorAction::Resume => self.resume(skey, actor, now),
            ProctorAction::Close { force } => self.close_session(skey, force, actor, now),
            ProctorAction::ResetLogin {
                participant,
                reason,
            } => self.reset_login(skey, &participant, &reason, actor, now),
            ProctorAction::AddTime {
                participant,
                minutes,
                reason,
            } => self.add_time(skey, participant.as_ref(), minutes, &reason, actor, now),
            ProctorAction::ForceFinish {
                participant,
                reason,
            } => self.force_finish(skey, &participant, &reason, actor, now),
            ProctorAction::Attendance {
                participant,
                present,
            } => self.mark_attendance(skey, &participant, present, actor, now),
            ProctorAction::UnlockLogin { ip } => self.lift_login_lock(skey, &ip, actor, now),
            ProctorAction::AssignProctor { proctor, assign } => {
                self.assign_proctor(skey, &proctor, assign, actor, now)
            }
        }
    }

    fn running_session(&self, skey: &SessionKey) -> Outcome<&Session> {
        let s = self.sessions.get(skey).ok_or(Refused::InvalidInput)?;
        if !s.is_running() {
            return Err(Refused::SessionClosed);
        }
        Ok(s)
    }

    fn attempt_in(&self, skey: &SessionKey, number: &ParticipantNo) -> Outcome<Cow<'_, Attempt>> {
        self.find_attempt(&AttemptKey::of(skey, number))
            .ok_or(Refused::NotStarted)
    }

    /// Moves a participant to another PC: the old browser's session ends, the attempt is
    /// free to be taken up by a new login, with every answer and the remaining time.
    pub fn reset_login(
        &mut self,
        skey: &SessionKey,
        number: &ParticipantNo,
        reason: &str,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let s = self.running_session(skey)?;
        if !self.is_registered(s, number) {
            return Err(Refused::NotRegistered);
        }
        let reason = clean_reason(reason)?;
        let mut puts = Vec::new();
        let old: Vec<CookieId> = self
            .web
            .iter()
            .filter(|(_, w)| matches!(&w.who, Who::Participant { number: n, .. } if n == number))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &old {
            self.web.remove(k);
            puts.push(Put::delete(Table::WebSessions, k));
        }
        let akey = AttemptKey::of(skey, number);
        if let Some(a) = self.attempts.get_mut(&akey) {
            a.browser = None;
            puts.push(Self::attempt_put(a));
        }
        self.logins.forget_account(number);
        self.live.remove(&akey);
        let ev = Event::ResetLogin {
            participant: number.to_string(),
            reason,
            browsers_ended: old.len(),
        };
        puts.push(self.log(skey, now, actor, ev));
        Ok(puts)
    }

    /// Gives one participant time back (their PC died for 7 minutes) or extra time.
    pub(crate) fn add_time(
        &mut self,
        skey: &SessionKey,
        number: Option<&ParticipantNo>,
        minutes: i64,
        reason: &str,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        self.running_session(skey)?;
        let reason = clean_reason(reason)?;
        if !(1..=240).contains(&minutes) {
            return Err(Refused::InvalidInput);
        }
        // One participant whose work was already collected: say so (the console words it
        // for the proctor), rather than "not started".
        if let Some(n) = number
            && self.attempt_in(skey, n).is_ok_and(|a| !a.is_running())
        {
            return Err(Refused::Finished);
        }
        let mut puts = Vec::new();
        let mut who = Vec::new();
        for a in self.attempts.values_mut() {
            let target =
                a.session == skey && a.is_running() && number.is_none_or(|n| a.participant == n);
            if target {
                a.deadline_ms += minutes * 60_000;
                who.push(a.participant.to_string());
                puts.push(Self::attempt_put(a));
            }
        }
        if who.is_empty() {
            return Err(Refused::NotStarted);
        }
        let ev = Event::TimeCredit {
            participants: who,
            minutes,
            reason,
        };
        puts.push(self.log(skey, now, actor, ev));
        Ok(puts)
    }

    /// Stops the clock for everyone in the session (a power cut).
    pub fn pause(
        &mut self,
        skey: &SessionKey,
        reason: &str,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let reason = clean_reason(reason)?;
        let s = self.sessions.get_mut(skey).ok_or(Refused::InvalidInput)?;
        let SessionStatus::Open { opened_ms } = s.status else {
            return Err(Refused::NotOpen);
        };
        s.status = SessionStatus::Paused {
            opened_ms,
            since_ms: now,
        };
        Ok(self.session_logged(skey, now, actor, Event::Pause { reason }))
    }

    /// Restarts the clock: every running attempt keeps exactly the time it had at the pause.
    pub(crate) fn resume(
        &mut self,
        skey: &SessionKey,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let s = self.sessions.get_mut(skey).ok_or(Refused::InvalidInput)?;
        let SessionStatus::Paused {
            opened_ms,
            since_ms,
        } = s.status
        else {
            return Err(Refused::NotPaused);
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
        puts.push(self.log(skey, now, actor, Event::ResumeSession { paused_ms }));
        Ok(puts)
    }

    /// Ends one participant's attempt on the proctor's decision (with a reason).
    pub(crate) fn force_finish(
        &mut self,
        skey: &SessionKey,
        number: &ParticipantNo,
        reason: &str,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let reason = clean_reason(reason)?;
        let akey = self.attempt_in(skey, number)?.key.clone();
        let actor: Actor = actor.into();
        let mut puts = self.finish(&akey, FinishedBy::Proctor, &actor, now)?;
        let ev = Event::ForceFinishReason {
            participant: number.to_string(),
            reason,
        };
        puts.push(self.log(skey, now, actor, ev));
        Ok(puts)
    }

    /// Closes a session. Refused while attempts are running unless `force`, which
    /// submits them (recorded as forced by the proctor).
    pub fn close_session(
        &mut self,
        skey: &SessionKey,
        force: bool,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let running: Vec<AttemptKey> = self
            .attempts
            .values()
            .filter(|a| a.session == skey && a.is_running())
            .map(|a| a.key.clone())
            .collect();
        let s = self.sessions.get(skey).ok_or(Refused::InvalidInput)?;
        let opened_ms = match s.status {
            SessionStatus::Open { opened_ms } | SessionStatus::Paused { opened_ms, .. } => {
                opened_ms
            }
            _ => return Err(Refused::NotOpen),
        };
        if !running.is_empty() && !force {
            return Err(Refused::AttemptsRunning);
        }
        let actor: Actor = actor.into();
        let mut puts = Vec::new();
        for k in running {
            puts.extend(self.finish(&k, FinishedBy::Proctor, &actor, now)?);
        }
        if let Some(s) = self.sessions.get_mut(skey) {
            s.status = SessionStatus::Closed {
                opened_ms,
                closed_ms: now,
            };
            s.token = None;
            puts.push(Put::json(Table::Sessions, skey, &*s));
        }
        puts.push(self.log(skey, now, actor, Event::SessionClose { forced: force }));
        // Its attempts leave memory once this is durable (`Durable::committed`).
        self.evict.push(skey.clone());
        Ok(puts)
    }

    /// Attendance as the proctor records it (present/absent), in the log and the session.
    pub fn mark_attendance(
        &mut self,
        skey: &SessionKey,
        number: &ParticipantNo,
        present: bool,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let s = self.sessions.get(skey).ok_or(Refused::InvalidInput)?;
        if !self.is_registered(s, number) {
            return Err(Refused::NotRegistered);
        }
        let s = self.sessions.get_mut(skey).ok_or(Refused::InvalidInput)?;
        s.attendance.insert(number.clone(), present);
        let ev = Event::Attendance {
            participant: number.to_string(),
            present,
        };
        Ok(self.session_logged(skey, now, actor, ev))
    }
}

impl Exam {
    /// Assigns (or unassigns) a proctor account to a session. Admin only (checked by the
    /// console).
    pub(crate) fn assign_proctor(
        &mut self,
        skey: &SessionKey,
        user: &str,
        assign: bool,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        if !self
            .users
            .get(user)
            .is_some_and(|u| u.role == Role::Proctor)
        {
            return Err(Refused::NoSuchProctor);
        }
        let s = self.sessions.get_mut(skey).ok_or(Refused::InvalidInput)?;
        s.proctors.retain(|p| p != user);
        if assign {
            s.proctors.push(user.to_string());
        }
        let ev = Event::ProctorAssign {
            proctor: user.to_string(),
            assigned: assign,
        };
        Ok(self.session_logged(skey, now, actor, ev))
    }
}

impl Exam {
    /// Saves the proctor's notes to the minutes; `confirm` seals them (no more edits).
    pub(crate) fn save_minutes(
        &mut self,
        skey: &SessionKey,
        notes: &str,
        confirm: bool,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        if notes.chars().count() > 10_000 {
            return Err(Refused::InvalidInput);
        }
        let s = self.sessions.get_mut(skey).ok_or(Refused::InvalidInput)?;
        // Confirmed minutes must not change afterwards: the incidents stop with the close.
        if confirm && !matches!(s.status, SessionStatus::Closed { .. }) {
            return Err(Refused::SessionRunning);
        }
        if s.minutes.as_ref().is_some_and(|m| m.confirmed_by.is_some()) {
            return Err(Refused::MinutesConfirmed);
        }
        let actor: Actor = actor.into();
        s.minutes = Some(Minutes {
            notes: notes.trim().to_string(),
            confirmed_by: confirm.then(|| actor.to_string()),
            confirmed_ms: confirm.then_some(now),
        });
        let notes = notes.trim().to_string();
        let ev = if confirm {
            Event::MinutesConfirmed { notes }
        } else {
            Event::MinutesSaved { notes }
        };
        Ok(self.session_logged(skey, now, actor, ev))
    }
}

/// Reasons are short free text, stored in the log and printed in the minutes.
fn clean_reason(reason: &str) -> Outcome<String> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 200 {
        return Err(Refused::ReasonRequired);
    }
    Ok(r.to_string())
}
