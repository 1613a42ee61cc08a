//! Terminal concerns: TTY detection, ANSI colours, confirmations and hidden input.

use std::io::{BufRead, IsTerminal, Write};

pub const RED: &str = "31";
pub const GREEN: &str = "32";
pub const YELLOW: &str = "33";
pub const MAGENTA: &str = "35";
pub const CYAN: &str = "36";
pub const WHITE: &str = "37";
pub const BOLD: &str = "1";
pub const FAINT: &str = "2";
pub const BOLD_RED: &str = "1;31";
pub const BLINK_WHITE_ON_RED: &str = "5;37;41";

pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal()
}

pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Wraps `text` in the SGR `code` when `enabled`.
pub fn paint(text: &str, code: &str, enabled: bool) -> String {
    if enabled && !code.is_empty() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The colour of a build status (spec §1.4).
pub fn status_color(status: &str) -> &'static str {
    match status {
        "pending" => WHITE,
        "started" => YELLOW,
        "succeeded" => GREEN,
        "failed" => RED,
        "errored" => BOLD_RED,
        "aborted" => MAGENTA,
        _ => BLINK_WHITE_ON_RED,
    }
}

/// Prints a red warning to stderr (colour only on a TTY).
pub fn warn(text: &str) {
    eprintln!("{}", paint(text, RED, stderr_is_tty()));
}

/// How an answer to a `[yN]` prompt reads; `None` = ask again.
pub fn parse_answer(line: &str) -> Option<bool> {
    match line.trim().to_ascii_lowercase().as_str() {
        "" | "n" | "no" => Some(false),
        "y" | "yes" => Some(true),
        _ => None,
    }
}

/// `<question> [yN]: ` on stdout; reads stdin until a valid answer. EOF means no.
pub fn confirm(question: &str) -> bool {
    let stdin = std::io::stdin();
    loop {
        print!("{question} [yN]: ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => {
                println!();
                return false;
            }
            Ok(_) => {}
        }
        if let Some(answer) = parse_answer(&line) {
            return answer;
        }
    }
}

/// Prints `prompt` and reads one line, without echo when stdin is a terminal.
pub fn read_hidden(prompt: &str) -> std::io::Result<String> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let tty = stdin_is_tty();
    if tty {
        set_echo(false);
    }
    let mut line = String::new();
    let res = std::io::stdin().lock().read_line(&mut line);
    if tty {
        set_echo(true);
        println!();
    }
    res?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_answers_are_case_insensitive_and_empty_means_no() {
        assert_eq!(parse_answer("Y\n"), Some(true));
        assert_eq!(parse_answer("yes"), Some(true));
        assert_eq!(parse_answer("NO"), Some(false));
        assert_eq!(parse_answer("\n"), Some(false));
        assert_eq!(parse_answer("maybe"), None);
    }

    #[test]
    fn paint_only_colours_when_enabled() {
        assert_eq!(paint("x", RED, false), "x");
        assert_eq!(paint("x", RED, true), "\x1b[31mx\x1b[0m");
    }
}
