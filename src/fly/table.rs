//! Tables as upstream prints them (`fly/ui/table.go`): cells left-aligned and padded to the
//! widest cell of their column (the last column too), two spaces between columns, headers
//! only on a TTY or with `--print-table-headers`, colours only on a TTY.

use super::ui;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cell {
    pub text: String,
    pub color: Option<&'static str>,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            color: None,
        }
    }

    pub fn colored(text: impl Into<String>, color: &'static str) -> Cell {
        Cell {
            text: text.into(),
            color: Some(color),
        }
    }

    /// `yes` in cyan or `no`.
    pub fn yes_no(b: bool) -> Cell {
        if b {
            Cell::colored("yes", ui::CYAN)
        } else {
            Cell::new("no")
        }
    }

    /// A faint `none` for empty optional cells.
    pub fn none() -> Cell {
        Cell::colored("none", ui::FAINT)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::new(s)
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::new(s)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub headers: Vec<Cell>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| Cell::new(*h)).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    /// Sorts rows by their first cell (string order), like upstream's `sort.Sort(data)`.
    pub fn sort_by_first_column(&mut self) {
        self.rows.sort_by(|a, b| {
            let ka = a.first().map(|c| c.text.as_str()).unwrap_or_default();
            let kb = b.first().map(|c| c.text.as_str()).unwrap_or_default();
            ka.cmp(kb)
        });
    }

    pub fn render(&self, print_headers: bool, tty: bool) -> String {
        let show_headers = print_headers || tty;
        let mut widths: Vec<usize> = Vec::new();
        let mut widen = |row: &[Cell]| {
            for (i, c) in row.iter().enumerate() {
                let w = c.text.chars().count();
                if i >= widths.len() {
                    widths.push(w);
                } else if w > widths[i] {
                    widths[i] = w;
                }
            }
        };
        if show_headers {
            widen(&self.headers);
        }
        for row in &self.rows {
            widen(row);
        }
        let mut out = String::new();
        if show_headers && !self.headers.is_empty() {
            let bold: Vec<Cell> = self
                .headers
                .iter()
                .map(|h| Cell {
                    text: h.text.clone(),
                    color: Some(ui::BOLD),
                })
                .collect();
            render_row(&mut out, &bold, &widths, tty);
        }
        for row in &self.rows {
            render_row(&mut out, row, &widths, tty);
        }
        out
    }

    /// Prints to stdout, honouring the global `--print-table-headers`.
    pub fn print(&self, print_headers: bool) {
        print!("{}", self.render(print_headers, ui::stdout_is_tty()));
    }
}

fn render_row(out: &mut String, row: &[Cell], widths: &[usize], tty: bool) {
    for (i, cell) in row.iter().enumerate() {
        out.push_str(&ui::paint(&cell.text, cell.color.unwrap_or(""), tty));
        let w = widths.get(i).copied().unwrap_or(0);
        out.push_str(&" ".repeat(w.saturating_sub(cell.text.chars().count())));
        if i + 1 < widths.len() {
            out.push_str("  ");
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["name", "paused"]);
        t.push(vec!["zeta".into(), Cell::yes_no(true)]);
        t.push(vec!["a".into(), Cell::yes_no(false)]);
        t
    }

    #[test]
    fn pads_every_column_including_the_last_and_hides_headers_off_tty() {
        let mut t = sample();
        t.sort_by_first_column();
        assert_eq!(t.render(false, false), "a     no \nzeta  yes\n");
    }

    #[test]
    fn headers_widen_columns_when_printed() {
        let t = sample();
        assert_eq!(
            t.render(true, false),
            "name  paused\nzeta  yes   \na     no    \n"
        );
    }

    #[test]
    fn colours_only_on_a_tty() {
        let t = sample();
        let out = t.render(false, true);
        assert!(out.contains("\x1b[1mname\x1b[0m"), "{out:?}");
        assert!(out.contains("\x1b[36myes\x1b[0m   "), "{out:?}");
    }
}
