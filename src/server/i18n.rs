//! Every word a participant reads, in Bahasa Indonesia (default) and English.
//!
//! One table, so a translator edits one file, and API error messages use the same words as
//! the pages.

use hyper::header::{self, HeaderMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    Id,
    En,
}

impl Lang {
    /// The `lang=en|id` cookie that the login page's language switch sets; Indonesian
    /// otherwise, **whatever the browser's `Accept-Language` says**: lab PCs often have an
    /// English browser, and participants read Indonesian unless they choose English
    /// themselves (issue 13, brief "Languages").
    pub(crate) fn from_headers(h: &HeaderMap) -> Lang {
        for v in h.get_all(header::COOKIE) {
            if let Ok(s) = v.to_str() {
                for part in s.split(';') {
                    match part.trim() {
                        "lang=en" => return Lang::En,
                        "lang=id" => return Lang::Id,
                        _ => {}
                    }
                }
            }
        }
        Lang::Id
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }
}

/// A page string.
pub(crate) fn t(lang: Lang, key: &str) -> &'static str {
    let (id, en) = match key {
        "app" => ("Tes Akhir", "Final Test"),
        "login_title" => ("Masuk Peserta", "Participant Login"),
        "participant_no" => ("Nomor peserta", "Participant number"),
        "password" => ("Kata sandi", "Password"),
        "login" => ("Masuk", "Log in"),
        "logout" => ("Keluar", "Log out"),
        "token_title" => ("Token Sesi", "Session Token"),
        "token_help" => (
            "Ketik token yang dibacakan atau ditampilkan oleh pengawas.",
            "Type the token the proctor reads out or shows.",
        ),
        "token" => ("Token", "Token"),
        "next" => ("Lanjut", "Continue"),
        "confirm_title" => ("Konfirmasi Data Peserta", "Confirm your details"),
        "confirm_help" => (
            "Periksa data Anda. Jika ada yang salah, beri tahu pengawas sebelum mulai.",
            "Check your details. If anything is wrong, tell the proctor before starting.",
        ),
        "name" => ("Nama", "Name"),
        "institution" => ("Instansi", "Institution"),
        "test" => ("Tes", "Test"),
        "duration" => ("Durasi", "Duration"),
        "minutes" => ("menit", "minutes"),
        "items" => ("Jumlah soal", "Items"),
        "rules" => ("Petunjuk", "Instructions"),
        "start" => ("Mulai Mengerjakan", "Start the test"),
        "continue" => ("Lanjutkan Mengerjakan", "Continue the test"),
        "question" => ("Soal", "Question"),
        "of" => ("dari", "of"),
        "doubtful" => ("Ragu-ragu", "Not sure"),
        "prev" => ("Sebelumnya", "Previous"),
        "save_next" => ("Simpan & Berikutnya", "Save & next"),
        "save" => ("Simpan", "Save"),
        "finish" => ("Selesai", "Finish"),
        "remaining" => ("Sisa waktu", "Time left"),
        "saved" => ("tersimpan", "saved"),
        "unsaved" => ("belum tersimpan", "not saved yet"),
        "large_font" => ("Huruf besar", "Large text"),
        "normal_font" => ("Huruf normal", "Normal text"),
        "contrast" => ("Kontras tinggi", "High contrast"),
        "nav" => ("Nomor soal", "Questions"),
        "legend_answered" => ("dijawab", "answered"),
        "legend_doubtful" => ("ragu-ragu", "not sure"),
        "legend_empty" => ("belum dijawab", "not answered"),
        "clear" => ("Hapus jawaban", "Clear answer"),
        "finish_title" => ("Selesai Mengerjakan?", "Finish the test?"),
        "unanswered_items" => ("Soal belum dijawab", "Unanswered questions"),
        "doubtful_items" => ("Soal ragu-ragu", "Questions marked not sure"),
        "none" => ("tidak ada", "none"),
        "finish_warn" => (
            "Setelah selesai, jawaban tidak dapat diubah lagi.",
            "After finishing, answers cannot be changed.",
        ),
        "finish_yes" => ("Ya, saya selesai", "Yes, I am finished"),
        "back_to_test" => ("Kembali ke soal", "Back to the questions"),
        "result_title" => ("Tes Selesai", "Test finished"),
        "thanks" => (
            "Terima kasih. Jawaban Anda sudah tersimpan dan dinilai.",
            "Thank you. Your answers are saved and scored.",
        ),
        "your_score" => ("Nilai Anda", "Your score"),
        "predicate" => ("Predikat", "Grade"),
        "score_hidden" => (
            "Nilai akan diumumkan oleh UPT.",
            "The UPT will announce the score.",
        ),
        "certificate_note" => (
            "Sertifikat dan nilai akhir diterbitkan oleh UPT.",
            "Certificates and final grades come from the UPT.",
        ),
        "questionnaire" => ("Kuesioner Evaluasi", "Evaluation questionnaire"),
        "send" => ("Kirim", "Send"),
        "paused" => (
            "Ujian dihentikan sementara oleh pengawas. Waktu Anda tidak berkurang; jawaban yang Anda pilih dikirim setelah ujian dilanjutkan.",
            "The proctor has paused the test. Your time is not running.",
        ),
        "time_up" => ("Waktu habis.", "Time is up."),
        "keyboard_help" => (
            "Tombol A–E memilih jawaban, R menandai ragu-ragu, panah kiri/kanan berpindah soal.",
            "Keys A–E choose an answer, R marks it not sure, left/right arrows move between questions.",
        ),
        "error_title" => ("Terjadi Masalah", "Something went wrong"),
        "back" => ("Kembali", "Back"),
        "font_size" => ("Ukuran huruf", "Text size"),
        "font_normal" => ("huruf normal", "normal text"),
        "font_large" => ("huruf besar", "large text"),
        "font_xlarge" => ("huruf sangat besar", "very large text"),
        "on" => ("aktif", "on"),
        "off" => ("mati", "off"),
        "nojs_save" => (
            "Jawaban disimpan setiap kali Anda menekan Sebelumnya, Berikutnya, nomor soal atau Selesai.",
            "Your answer is saved whenever you press Previous, Next, a question number or Finish.",
        ),
        "offline" => (
            "Koneksi ke server terputus — jawaban Anda aman di komputer ini dan akan dikirim otomatis. Jangan tutup halaman ini.",
            "Connection to the server lost — your answers are safe on this computer and will be sent automatically. Do not close this page.",
        ),
        "why_offline" => (
            "server tidak dapat dihubungi; dikirim otomatis begitu tersambung lagi",
            "the server cannot be reached; sent automatically once it is back",
        ),
        "why_paused" => (
            "ujian dihentikan sementara oleh pengawas; dikirim otomatis setelah dilanjutkan",
            "the proctor paused the test; sent automatically after the resume",
        ),
        "why_retry" => (
            "server sibuk; dicoba lagi otomatis",
            "the server is busy; retrying automatically",
        ),
        "ended_proctor" => (
            "Tes Anda diakhiri oleh pengawas; jawaban yang tersimpan sudah dinilai.",
            "The proctor ended your test; your saved answers are scored.",
        ),
        "ended_time" => (
            "Waktu habis: jawaban Anda dikumpulkan otomatis oleh sistem.",
            "Time is up: the system collected your answers automatically.",
        ),
        "ended_self" => ("Anda telah menyelesaikan tes.", "You finished the test."),
        "questionnaire_invite" => (
            "Mohon isi kuesioner evaluasi singkat (beberapa menit).",
            "Please fill in the short evaluation questionnaire (a few minutes).",
        ),
        "fill_questionnaire" => ("Isi kuesioner", "Fill in the questionnaire"),
        "other_test" => (
            "Ada tes lain? Masukkan tokennya",
            "Another test? Enter its token",
        ),
        _ => ("?", "?"),
    };
    match lang {
        Lang::Id => id,
        Lang::En => en,
    }
}

/// The message for a stable error code.
pub(crate) fn msg(lang: Lang, code: &str) -> &'static str {
    let (id, en) = match code {
        "bad_login" => (
            "Nomor peserta atau kata sandi salah.",
            "Wrong participant number or password.",
        ),
        "login_locked" => (
            "Terlalu banyak percobaan yang salah dari komputer ini. Tunggu 5 menit atau minta pengawas membuka kuncinya.",
            "Too many wrong attempts from this computer. Wait 5 minutes or ask the proctor to unlock it.",
        ),
        "too_many_saves" => (
            "Terlalu banyak penyimpanan dalam waktu singkat. Tunggu sebentar, lalu coba lagi.",
            "Too many saves in a short time. Wait a moment, then try again.",
        ),
        "too_many_requests" => (
            "Terlalu banyak permintaan dari komputer ini. Tunggu sebentar, lalu coba lagi.",
            "Too many requests from this computer. Wait a moment, then try again.",
        ),
        "too_slow" => (
            "Permintaan terlalu lambat terkirim dan dihentikan. Coba lagi.",
            "The request was sent too slowly and was cut off. Try again.",
        ),
        "bad_host" => (
            "Alamat server tidak dikenal. Buka server dengan alamat IP atau nama yang diberikan teknisi.",
            "Unknown server address. Open the server by the IP address or name the technician gave you.",
        ),
        "lab_full" => (
            "Daftar komputer lab sudah penuh. Minta admin menghapus daftar lama di halaman admin.",
            "The lab computer list is full. Ask the admin to clear the old list on the admin page.",
        ),
        "already_active" => (
            "Anda sedang masuk di komputer lain. Hubungi pengawas untuk pindah komputer.",
            "You are logged in on another computer. Call the proctor to move to this one.",
        ),
        "moved_to_other_pc" => (
            "Sesi Anda dipindahkan ke komputer lain. Hubungi pengawas.",
            "Your session was moved to another computer. Call the proctor.",
        ),
        "not_logged_in" => (
            "Anda belum masuk. Silakan masuk dengan nomor peserta dan kata sandi.",
            "You are not logged in. Log in with your participant number and password.",
        ),
        "bad_token" => (
            "Token salah atau sudah tidak berlaku. Periksa lagi token dari pengawas.",
            "Wrong or expired token. Check the token from the proctor.",
        ),
        "not_registered" => (
            "Anda tidak terdaftar di sesi ini. Hubungi pengawas.",
            "You are not registered for this session. Call the proctor.",
        ),
        "not_started" => (
            "Tes belum dimulai. Masukkan token terlebih dahulu.",
            "The test has not started. Enter the token first.",
        ),
        "session_paused" => (
            "Ujian dihentikan sementara oleh pengawas. Tunggu aba-aba pengawas; jawaban Anda tidak hilang.",
            "The session is paused. Wait for the proctor.",
        ),
        "session_closed" => ("Sesi ini sudah ditutup.", "This session is closed."),
        "finished" => (
            "Tes Anda sudah selesai; jawaban tidak dapat diubah.",
            "Your test is finished; answers cannot be changed.",
        ),
        "deadline_passed" => (
            "Waktu sudah habis; jawaban ini tidak disimpan.",
            "Time is up; this answer was not saved.",
        ),
        "stale_seq" => (
            "Jawaban yang lebih baru sudah tersimpan; jawaban lama ini diabaikan.",
            "A newer answer is already saved; this older one was ignored.",
        ),
        "unknown_item" => ("Soal tidak ditemukan.", "No such question."),
        "invalid_choice" => ("Pilihan jawaban tidak sah.", "Invalid answer choice."),
        "not_finished" => (
            "Kuesioner diisi setelah tes selesai.",
            "The questionnaire comes after the test.",
        ),
        "invalid_input" => ("Isian tidak sah.", "Invalid input."),
        "malformed_json" => (
            "Permintaan tidak dapat dibaca (JSON rusak).",
            "The request could not be read (malformed JSON).",
        ),
        "malformed_form" => ("Isian formulir tidak lengkap.", "The form was incomplete."),
        "json_required" => (
            "Permintaan harus berupa JSON (Content-Type: application/json).",
            "The request must be JSON (Content-Type: application/json).",
        ),
        "too_large" => ("Permintaan terlalu besar.", "The request is too large."),
        "not_found" => ("Halaman tidak ditemukan.", "Page not found."),
        "forbidden" => ("Akses ditolak.", "Access denied."),
        "cross_site" => (
            "Permintaan dari situs lain ditolak.",
            "Requests from other sites are refused.",
        ),
        "store_failed" => (
            "Server tidak dapat menyimpan ke disk. Jawaban tetap di browser; beri tahu pengawas.",
            "The server could not save to disk. Your answer stays in the browser; tell the proctor.",
        ),
        "already_open" => ("Sesi sudah dibuka.", "The session is already open."),
        "not_open" => ("Sesi tidak sedang dibuka.", "The session is not open."),
        "not_paused" => (
            "Sesi tidak sedang dihentikan.",
            "The session is not paused.",
        ),
        "attempts_running" => (
            "Masih ada peserta yang mengerjakan. Tunggu, atau tutup paksa.",
            "Participants are still working. Wait, or force the close.",
        ),
        "reason_required" => (
            "Tuliskan alasan (paling banyak 200 karakter).",
            "Give a reason (at most 200 characters).",
        ),
        "no_such_proctor" => ("Akun pengawas tidak ditemukan.", "No such proctor account."),
        "session_sealed" => (
            "Hasil sesi ini sudah disegel: hanya admin yang dapat membukanya kembali, dengan alasan.",
            "This session's results are sealed: only an admin can re-open it, with a reason.",
        ),
        "already_sealed" => (
            "Sesi ini sudah disegel: pilih Segel ulang bila memang perlu menyegel lagi.",
            "This session is sealed already: choose Re-seal if it must be sealed again.",
        ),
        "release_code_wrong" => (
            "Sesi tidak dapat dibuka: kode rilis salah atau paket rusak.",
            "The session could not be opened: wrong release code or damaged package.",
        ),
        "session_running" => (
            "Tutup sesi terlebih dahulu, baru konfirmasi berita acara.",
            "Close the session first, then confirm the minutes.",
        ),
        "minutes_confirmed" => (
            "Berita acara sudah dikonfirmasi dan tidak dapat diubah.",
            "The minutes are confirmed and can no longer be changed.",
        ),
        "csrf" => (
            "Formulir kedaluwarsa. Muat ulang halaman dan coba lagi.",
            "The form expired. Reload the page and try again.",
        ),
        _ => ("Terjadi kesalahan.", "Something went wrong."),
    };
    match lang {
        Lang::Id => id,
        Lang::En => en,
    }
}

#[cfg(test)]
mod lang_tests {
    use super::*;

    fn check(headers: &[(&str, &str)], want: Lang) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                header::HeaderValue::from_str(v).unwrap(),
            );
        }
        assert_eq!(Lang::from_headers(&h), want, "{headers:?}");
    }

    #[test]
    fn indonesian_unless_the_participant_chose_english() {
        check(&[], Lang::Id);
        check(&[("accept-language", "en-US,en;q=0.9")], Lang::Id);
        check(
            &[("accept-language", "en-GB"), ("cookie", "a=1; lang=en")],
            Lang::En,
        );
        check(&[("cookie", "lang=id")], Lang::Id);
        check(&[("cookie", "lang=fr")], Lang::Id);
    }
}
