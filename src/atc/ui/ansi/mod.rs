//! Build-log terminal emulation: turns a stream of text chunks (split anywhere,
//! even inside an escape sequence) into lines of styled spans, as a terminal
//! would show them. The output is data for `textContent`, never HTML.
//!
//! Where terminals differ, or a log (which has no fixed screen) needs a rule:
//! - `\n` creates the next line at once, so `"a\n"` has the lines `"a"` and
//!   `""`: the plain lines of plain input are exactly `input.split('\n')`,
//!   except that an empty log has no lines, and [`plain_text`] returns plain
//!   input unchanged.
//! - Cursor movement never creates lines. The cursor may go below the last
//!   line; lines (empty ones in between) appear when text is written there or
//!   on `\n`. Movement reaches at most [`MAX_JUMP`] rows past the last line or
//!   columns past the end of the line, so one hostile sequence cannot make us
//!   allocate without bound.
//! - Writing past the end of a line pads it with default-style spaces. A tab
//!   only moves the cursor (never erasing what it passes), so its gap is
//!   padded only once text follows, as after `CSI C`.
//! - Erasing to the end of a line truncates it, so erasing leaves no trailing
//!   spaces; cells erased before other text become default-style spaces (no
//!   background-colour erase).
//! - `CSI 2 J` and `CSI 3 J` empty every line but keep the line count and the
//!   cursor: a log has no screen to scroll away.
//! - `CSI s` and `ESC 7` both save the position and the SGR style (as DECSC
//!   does); restoring without a save goes to the top-left with no style.
//! - An unterminated sequence is dropped after 64 chars, or after 4096 for
//!   OSC/DCS-like strings (hyperlink URLs are long); what follows is text.
//! - C1 controls (U+0080..U+009F) and DEL are dropped like C0 ones.

use serde::Serialize;
use std::mem;

/// How far cursor movement may reach past existing content.
pub const MAX_JUMP: usize = 4096;
const MAX_SEQ: usize = 64;
const MAX_STRING: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Color {
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub fg: Option<Color>,
    pub bg: Option<Color>,
    pub bold: bool,
    pub faint: bool,
    pub italic: bool,
    pub underline: bool,
    pub blink: bool,
    pub inverse: bool,
    pub strike: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub style: Style,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    ch: char,
    style: Style,
}

fn blank() -> Cell {
    Cell {
        ch: ' ',
        style: Style::default(),
    }
}

/// A line at rest: its text plus (char count, style) runs, several times
/// smaller than cells, which matters for 100,000-line logs.
#[derive(Debug, Clone, Default)]
struct Line {
    text: String,
    runs: Vec<(usize, Style)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    Esc,
    /// `ESC` plus intermediates, e.g. the charset select `ESC ( B`.
    EscInter,
    Csi,
    /// OSC, DCS, SOS, PM or APC: ignored up to BEL or `ESC \`.
    Str,
    StrEsc,
}

#[derive(Debug, Clone, Default)]
pub struct Terminal {
    lines: Vec<Line>,
    /// The last line written to, as cells so that writing is O(1) wherever
    /// the cursor is in it; `lines[hot_row]` is left empty meanwhile.
    hot: Vec<Cell>,
    hot_row: Option<usize>,
    row: usize,
    col: usize,
    style: Style,
    saved: (usize, usize, Style),
    state: State,
    /// Parameters of the CSI being read, kept across chunks.
    seq: String,
    seq_len: usize,
    changed: Vec<usize>,
}

impl Terminal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk; returns the indices (ascending, deduplicated) of lines created or changed by it.
    pub fn feed(&mut self, chunk: &str) -> Vec<usize> {
        for c in chunk.chars() {
            self.step(c);
        }
        let mut changed = mem::take(&mut self.changed);
        changed.sort_unstable();
        changed.dedup();
        changed
    }

    /// Number of lines so far (a trailing partial line counts; an empty log has 0).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The line's text as spans: adjacent cells with equal style merged into
    /// one span; no empty spans. A line past the end has none.
    pub fn spans(&self, line: usize) -> Vec<Span> {
        let mut out: Vec<Span> = Vec::new();
        if self.hot_row == Some(line) {
            for c in &self.hot {
                match out.last_mut() {
                    Some(span) if span.style == c.style => span.text.push(c.ch),
                    _ => out.push(Span {
                        text: c.ch.into(),
                        style: c.style,
                    }),
                }
            }
        } else if let Some(l) = self.lines.get(line) {
            let mut chars = l.text.chars();
            for &(n, style) in &l.runs {
                out.push(Span {
                    text: chars.by_ref().take(n).collect(),
                    style,
                });
            }
        }
        out
    }

    /// The line as plain text (erasing never leaves trailing spaces).
    pub fn plain(&self, line: usize) -> String {
        if self.hot_row == Some(line) {
            self.hot.iter().map(|c| c.ch).collect()
        } else {
            self.lines
                .get(line)
                .map_or_else(String::new, |l| l.text.clone())
        }
    }

    /// The line for the browser: an array of `{"text", "class"?, "fg"?, "bg"?}`.
    /// Colours 0..=15 become `ansi-fg-N`/`ansi-bg-N` classes so the theme picks
    /// them; others become `#rrggbb`. Inverse swaps fg and bg here; if either
    /// is unset, `ansi-inverse` also tells the CSS to use the opposite default
    /// colour for the unset side (so it must come before the colour classes).
    pub fn line_json(&self, line: usize) -> serde_json::Value {
        let spans = self.spans(line).into_iter().map(|span| {
            let s = span.style;
            let flags = [
                (s.bold, "ansi-bold"),
                (s.faint, "ansi-faint"),
                (s.italic, "ansi-italic"),
                (s.underline, "ansi-underline"),
                (s.blink, "ansi-blink"),
                (s.strike, "ansi-strike"),
            ];
            let mut class: Vec<String> = flags
                .iter()
                .filter(|f| f.0)
                .map(|f| f.1.to_string())
                .collect();
            let (mut fg, mut bg) = (s.fg, s.bg);
            if s.inverse {
                mem::swap(&mut fg, &mut bg);
                if fg.is_none() || bg.is_none() {
                    class.push("ansi-inverse".into());
                }
            }
            let mut obj = serde_json::Map::new();
            obj.insert("text".into(), span.text.into());
            for (key, color) in [("fg", fg), ("bg", bg)] {
                match color {
                    Some(Color::Indexed(n)) if n < 16 => class.push(format!("ansi-{key}-{n}")),
                    Some(c) => {
                        obj.insert(key.into(), css_hex(c).into());
                    }
                    None => {}
                }
            }
            if !class.is_empty() {
                obj.insert("class".into(), class.join(" ").into());
            }
            serde_json::Value::Object(obj)
        });
        serde_json::Value::Array(spans.collect())
    }

    fn step(&mut self, c: char) {
        // Every arm that stays inside a sequence sets the state again.
        let state = mem::take(&mut self.state);
        if state == State::Ground {
            return self.ground(c);
        }
        self.seq_len += 1;
        let string = matches!(state, State::Str | State::StrEsc);
        if self.seq_len > if string { MAX_STRING } else { MAX_SEQ } {
            return;
        }
        match (state, c) {
            // CAN and SUB cancel any sequence.
            (_, '\x18' | '\x1a') | (State::Str, '\x07') | (State::StrEsc, '\\') => {}
            (State::Str, '\x1b') => self.state = State::StrEsc,
            (State::Str, _) => self.state = State::Str,
            // ESC not followed by `\` ends the string and starts a new escape.
            (State::StrEsc, _) => {
                self.begin(State::Esc);
                self.step(c);
            }
            (_, '\x1b') => self.begin(State::Esc),
            // Terminals execute C0 controls met inside a sequence.
            (_, '\0'..='\x1f') => {
                self.state = state;
                self.ground(c);
            }
            (State::Esc, '[') => self.begin(State::Csi),
            (State::Esc, ']' | 'P' | 'X' | '^' | '_') => self.begin(State::Str),
            (State::Esc, '7') => self.saved = (self.row, self.col, self.style),
            (State::Esc, '8') => (self.row, self.col, self.style) = self.saved,
            (State::Esc | State::EscInter, ' '..='/') => self.state = State::EscInter,
            (State::Esc | State::EscInter, '0'..='~') => {}
            (State::Csi, ' '..='?') => {
                self.state = state;
                self.seq.push(c);
            }
            (State::Csi, '@'..='~') => self.csi(c),
            // Anything else (non-ASCII, DEL) cannot be part of a sequence.
            _ => self.ground(c),
        }
    }

    fn begin(&mut self, state: State) {
        self.state = state;
        self.seq.clear();
        self.seq_len = 0;
    }

    fn ground(&mut self, c: char) {
        match c {
            '\x1b' => self.begin(State::Esc),
            '\n' => {
                self.row += 1;
                self.col = 0;
                self.ensure_rows(self.row + 1);
            }
            '\r' => self.col = 0,
            '\x08' => self.col = self.col.saturating_sub(1),
            '\t' => self.col = (self.col / 8 + 1) * 8,
            c if c.is_control() => {}
            c => self.put(c),
        }
    }

    fn put(&mut self, ch: char) {
        self.ensure_rows(self.row + 1);
        let (col, style) = (self.col, self.style);
        let cells = self.cells();
        if col < cells.len() {
            cells[col] = Cell { ch, style };
        } else {
            cells.resize(col, blank());
            cells.push(Cell { ch, style });
        }
        self.col += 1;
        self.mark(self.row);
    }

    fn mark(&mut self, row: usize) {
        // Skipping repeats keeps the list short without a set per char.
        if self.changed.last() != Some(&row) {
            self.changed.push(row);
        }
    }

    fn ensure_rows(&mut self, n: usize) {
        while self.lines.len() < n {
            self.mark(self.lines.len());
            self.lines.push(Line::default());
        }
    }

    /// The cursor's line as cells; the cursor must be on an existing line.
    fn cells(&mut self) -> &mut Vec<Cell> {
        if self.hot_row != Some(self.row) {
            self.flush();
            let line = mem::take(&mut self.lines[self.row]);
            let mut chars = line.text.chars();
            for (n, style) in line.runs {
                self.hot
                    .extend(chars.by_ref().take(n).map(|ch| Cell { ch, style }));
            }
            self.hot_row = Some(self.row);
        }
        &mut self.hot
    }

    fn flush(&mut self) {
        if let Some(row) = self.hot_row.take() {
            let line = &mut self.lines[row];
            for cell in self.hot.drain(..) {
                line.text.push(cell.ch);
                match line.runs.last_mut() {
                    Some((n, style)) if *style == cell.style => *n += 1,
                    _ => line.runs.push((1, cell.style)),
                }
            }
        }
    }

    fn width(&self, row: usize) -> usize {
        if self.hot_row == Some(row) {
            self.hot.len()
        } else {
            self.lines
                .get(row)
                .map_or(0, |l| l.runs.iter().map(|r| r.0).sum())
        }
    }

    fn clamp_row(&self, row: usize) -> usize {
        row.min(self.lines.len() + MAX_JUMP)
    }

    fn clamp_col(&self, col: usize) -> usize {
        col.min(self.width(self.row) + MAX_JUMP)
    }

    fn csi(&mut self, fin: char) {
        let seq = mem::take(&mut self.seq);
        // Private (`?25l`) and intermediate (`2 q`) forms are not ours.
        if !seq
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b';' || b == b':')
        {
            return;
        }
        let num = |d: &str| {
            d.bytes().fold(0u32, |a, b| {
                a.saturating_mul(10).saturating_add(u32::from(b - b'0'))
            })
        };
        let groups: Vec<Vec<u32>> = seq
            .split(';')
            .map(|g| g.split(':').map(num).collect())
            .collect();
        let n = |i: usize| groups.get(i).map_or(1, |g| g[0].max(1) as usize);
        match fin {
            'm' => self.sgr(&groups),
            'A' => self.row = self.row.saturating_sub(n(0)),
            'B' => self.row = self.clamp_row(self.row.saturating_add(n(0))),
            'C' => self.col = self.col.max(self.clamp_col(self.col.saturating_add(n(0)))),
            'D' => self.col = self.col.saturating_sub(n(0)),
            'E' => (self.row, self.col) = (self.clamp_row(self.row.saturating_add(n(0))), 0),
            'F' => (self.row, self.col) = (self.row.saturating_sub(n(0)), 0),
            'G' => self.col = self.clamp_col(n(0) - 1),
            'H' | 'f' => {
                self.row = self.clamp_row(n(0) - 1);
                self.col = self.clamp_col(n(1) - 1);
            }
            'K' => self.erase_line(groups[0][0]),
            'J' => self.erase_display(groups[0][0]),
            's' => self.saved = (self.row, self.col, self.style),
            'u' => (self.row, self.col, self.style) = self.saved,
            _ => {}
        }
    }

    fn erase_line(&mut self, mode: u32) {
        if self.row >= self.lines.len() {
            return;
        }
        let (row, col) = (self.row, self.col);
        let cells = self.cells();
        let changed = match mode {
            0 => col < cells.len(),
            1 | 2 => !cells.is_empty(),
            _ => false,
        };
        match mode {
            0 => cells.truncate(col),
            1 if col + 1 < cells.len() => cells[..=col].fill(blank()),
            1 | 2 => cells.clear(),
            _ => {}
        }
        if changed {
            self.mark(row);
        }
    }

    fn erase_display(&mut self, mode: u32) {
        let len = self.lines.len();
        let (others, line_mode) = match mode {
            0 => (self.row + 1..len, 0),
            1 => (0..self.row.min(len), 1),
            2 | 3 => (0..len, 2),
            _ => return,
        };
        self.flush();
        for i in others {
            if !self.lines[i].text.is_empty() {
                self.lines[i] = Line::default();
                self.mark(i);
            }
        }
        self.erase_line(line_mode);
    }

    fn sgr(&mut self, groups: &[Vec<u32>]) {
        let mut i = 0;
        while let Some(g) = groups.get(i) {
            i += 1;
            let s = &mut self.style;
            match g[0] {
                0 => *s = Style::default(),
                1 => s.bold = true,
                2 => s.faint = true,
                3 => s.italic = true,
                // `4:0` is "no underline" in the colon form.
                4 => s.underline = g.get(1) != Some(&0),
                5 | 6 => s.blink = true,
                7 => s.inverse = true,
                9 => s.strike = true,
                21 => s.bold = false,
                22 => (s.bold, s.faint) = (false, false),
                23 => s.italic = false,
                24 => s.underline = false,
                25 => s.blink = false,
                27 => s.inverse = false,
                29 => s.strike = false,
                n @ 30..=37 => s.fg = Some(Color::Indexed(n as u8 - 30)),
                n @ 90..=97 => s.fg = Some(Color::Indexed(n as u8 - 82)),
                39 => s.fg = None,
                n @ 40..=47 => s.bg = Some(Color::Indexed(n as u8 - 40)),
                n @ 100..=107 => s.bg = Some(Color::Indexed(n as u8 - 92)),
                49 => s.bg = None,
                n @ (38 | 48) => {
                    let color = if g.len() > 1 {
                        // The colon form is self-contained; `38:2:cs:r:g:b`
                        // carries a colour-space id we skip.
                        let a = &g[1..];
                        let with_cs;
                        let a = if a.len() >= 5 && a[0] == 2 {
                            with_cs = [2, a[2], a[3], a[4]];
                            &with_cs[..]
                        } else {
                            a
                        };
                        extended(a).0
                    } else {
                        let rest: Vec<u32> = groups[i..].iter().map(|g| g[0]).collect();
                        let (color, used) = extended(&rest);
                        i += used;
                        color
                    };
                    match (n, color) {
                        (38, Some(c)) => s.fg = Some(c),
                        (_, Some(c)) => s.bg = Some(c),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
}

/// The colour after `38`/`48` and how many parameters it claims: a malformed
/// one claims only what it announced, so the codes after it still apply.
fn extended(a: &[u32]) -> (Option<Color>, usize) {
    let byte = |i: usize| a.get(i).and_then(|&v| u8::try_from(v).ok());
    match a.first() {
        Some(5) if a.len() >= 2 => (byte(1).map(Color::Indexed), 2),
        Some(2) if a.len() >= 4 => {
            let rgb = byte(1).zip(byte(2)).zip(byte(3));
            (rgb.map(|((r, g), b)| Color::Rgb(r, g, b)), 4)
        }
        Some(5 | 2) => (None, a.len()),
        Some(_) => (None, 1),
        None => (None, 0),
    }
}

/// `#rrggbb` with the xterm palette; 0..=15 are left to the CSS theme.
fn css_hex(c: Color) -> String {
    let (r, g, b) = match c {
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(n) if n >= 232 => {
            let v = 8 + 10 * (n - 232);
            (v, v, v)
        }
        Color::Indexed(n) => {
            let i = n.saturating_sub(16);
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            (level(i / 36), level(i / 6 % 6), level(i % 6))
        }
    };
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Whole text through a fresh Terminal, returned as plain text lines joined with '\n' (used for the raw-log download).
pub fn plain_text(text: &str) -> String {
    let mut t = Terminal::new();
    t.feed(text);
    (0..t.len())
        .map(|i| t.plain(i))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
