use super::*;
use proptest::prelude::*;
use serde_json::json;

fn term(input: &str) -> Terminal {
    let mut t = Terminal::new();
    t.feed(input);
    t
}

fn lines(input: &str) -> Vec<String> {
    let t = term(input);
    (0..t.len()).map(|i| t.plain(i)).collect()
}

/// Each input's plain lines, compared joined with '\n'.
fn check<const N: usize>(cases: [(&str, &str); N]) {
    for (input, want) in cases {
        assert_eq!(lines(input).join("\n"), want, "{input:?}");
    }
}

fn snapshot(t: &Terminal) -> Vec<Vec<Span>> {
    (0..t.len()).map(|i| t.spans(i)).collect()
}

fn sp(text: &str, style: Style) -> Span {
    let text = text.into();
    Span { text, style }
}

fn with(mut style: Style, set: fn(&mut Style)) -> Style {
    set(&mut style);
    style
}

fn attr(set: fn(&mut Style)) -> Style {
    with(Style::default(), set)
}

fn fg(n: u8) -> Style {
    let fg = Some(Color::Indexed(n));
    Style {
        fg,
        ..Style::default()
    }
}

#[test]
fn newlines_and_trailing_line() {
    assert!(term("").is_empty() && Terminal::default().is_empty());
    assert_eq!(lines("\x1b[31m\r"), Vec::<String>::new());
    assert_eq!(lines("\n"), ["", ""]);
    assert_eq!(lines("a\nb\n"), ["a", "b", ""]);
    check([("a\nb", "a\nb"), ("a\r\nb\r\n", "a\nb\n")]);
}

#[test]
fn carriage_return_tab_backspace_controls() {
    check([
        ("10%\r20%\r100%", "100%"),
        ("abcdef\rXY", "XYcdef"),
        ("a\nlong line\rshort\n", "a\nshortline\n"),
        ("a\tb", "a       b"),
        ("abcdefgh\tx", "abcdefgh        x"),
        // A tab moves without erasing; a trailing tab adds nothing.
        ("a\t", "a"),
        ("abcdefghij\r\tX", "abcdefghXj"),
        ("ab\x08c", "ac"),
        ("\x08\x08x", "x"),
        ("a\x07b\0c\x7fd\u{9b}e", "abcde"),
    ]);
}

#[test]
fn sgr_attributes_and_reset() {
    let t = term("\x1b[1;31mred\x1b[0m plain\x1b[3;4;5;7;9;2mx\x1b[mz");
    let all = attr(|s| {
        (s.italic, s.underline, s.blink) = (true, true, true);
        (s.inverse, s.strike, s.faint) = (true, true, true);
    });
    let red = with(fg(1), |s| s.bold = true);
    let d = Style::default();
    assert_eq!(
        t.spans(0),
        [sp("red", red), sp(" plain", d), sp("x", all), sp("z", d)]
    );
    let t = term("\x1b[1;2;3;4;5;7;9;31;42m\x1b[21;23;24;25;27;29;39;49mx\x1b[1;2m\x1b[22my");
    assert_eq!(t.spans(0), [sp("x", attr(|s| s.faint = true)), sp("y", d)]);
    let t = term("\x1b[6;90ma\x1b[4:3mb\x1b[4:0mc");
    let (blink, under) = (with(fg(8), |s| s.blink = true), |s: &mut Style| {
        s.underline = true
    });
    assert_eq!(
        t.spans(0),
        [sp("a", blink), sp("b", with(blink, under)), sp("c", blink)]
    );
}

#[test]
fn colours() {
    let (i, rgb) = (
        |n| Some(Color::Indexed(n)),
        |r, g, b| Some(Color::Rgb(r, g, b)),
    );
    let colors = |input| {
        term(input)
            .spans(0)
            .iter()
            .map(|s| (s.style.fg, s.style.bg))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        colors("\x1b[97;100mb\x1b[37;47;107mc"),
        [(i(15), i(8)), (i(7), i(15))]
    );
    let got = colors("\x1b[38;5;196;48;2;1;2;3mx\x1b[38:2::10:20:30;48:5:100my\x1b[38:2:4:5:6mz");
    let want = [
        (i(196), rgb(1, 2, 3)),
        (rgb(10, 20, 30), i(100)),
        (rgb(4, 5, 6), i(100)),
    ];
    assert_eq!(got, want);
    // Empty parameters count as 0, as everywhere else.
    assert_eq!(colors("\x1b[38;2;;;mx\x1b[38;5;m"), [(rgb(0, 0, 0), None)]);
    assert_eq!(colors("\x1b[48;5;mx"), [(None, i(0))]);
}

#[test]
fn malformed_extended_colours_claim_only_their_own() {
    let bold = attr(|s| s.bold = true);
    for seq in [
        "38;5;300;1",
        "38;2;1;2;999;1",
        "38;9;1",
        "38:5;1",
        "38:2:1;1",
        "48:1;1",
    ] {
        assert_eq!(
            term(&format!("\x1b[{seq}mx")).spans(0),
            [sp("x", bold)],
            "{seq}"
        );
    }
    for seq in ["38", "38;5", "38;2;1;2", "48;2", "38:", "38::::::", "48;1"] {
        let want = [sp("x", Style::default())];
        assert_eq!(term(&format!("\x1b[{seq}mx")).spans(0), want, "{seq}");
    }
}

#[test]
fn cursor_movement() {
    check([
        ("a\nb\nc\x1b[2AX", "aX\nb\nc"),
        ("a\x1b[5AX", "aX"),
        ("a\nb\x1b[A\x1b[BZ", "a\nbZ"),
        ("abc\x1b[2DX\x1b[9DY", "YXc"),
        // Below the last line, lines appear only once something is written.
        ("a\x1b[5B", "a"),
        ("a\x1b[2Bx", "a\n\n x"),
        ("a\x1b[EX", "a\nX"),
        ("a\x1b[3CX\x1b[CY", "a   X Y"),
        ("abcdef\x1b[3GX\x1b[0GY", "YbXdef"),
        ("a\nb\nc\x1b[1;2HX\x1b[HY", "YX\nb\nc"),
        ("\x1b[2;3HX\x1b[1;1fY", "Y\n  X"),
        ("ab\ncd\x1b[FX\x1b[EY", "Xb\nYd"),
        ("abc\x1b[999999;999999H\x1b[1;1HX", "Xbc"),
    ]);
    let t = term("\x1b[99999999999B\x1b[4294967295Cx");
    assert_eq!(
        (t.len(), t.plain(MAX_JUMP).len()),
        (MAX_JUMP + 1, MAX_JUMP + 1)
    );
}

#[test]
fn erase() {
    check([
        ("abcdef\x1b[3G\x1b[K", "ab"),
        ("abcdef\x1b[3G\x1b[0K", "ab"),
        ("abcdef\x1b[3G\x1b[1K", "   def"),
        ("abcdef\x1b[1K", ""),
        ("abcdef\x1b[3G\x1b[2KX", "  X"),
        ("abc\x1b[5K\x1b[3B\x1b[K", "abc"),
        ("a\nbc\nd\x1b[2;2H\x1b[J", "a\nb\n"),
        ("a\nbc\nd\x1b[2;2H\x1b[1J", "\n\nd"),
        ("a\nb\nc\x1b[2J", "\n\n"),
        ("a\nb\nc\x1b[3JX", "\n\n X"),
        ("a\nb\x1b[9B\x1b[1J", "\n"),
    ]);
    let red_bg = attr(|s| s.bg = Some(Color::Indexed(1)));
    let t = term("\x1b[41mabc\x1b[2G\x1b[1K");
    assert_eq!(t.spans(0), [sp("  ", Style::default()), sp("c", red_bg)]);
}

#[test]
fn save_restore_and_ignored_sequences() {
    check([
        ("ab\x1b[sX\nY\x1b[uZ", "abZ\nY"),
        ("abc\x1b[uX", "Xbc"),
        (
            "a\x1b]0;title\x07b\x1b]8;;http://x\x1b\\c\x1b[?25ld\x1b[?25h",
            "abcd",
        ),
        ("\x1b(Be\x1bPq#0\x1b\\f\x1b[2 qa\x1b[>1;2mb\x1b=c", "efabc"),
        ("\x1b[1\x18d\x1b]x\x1b[31mf", "df"),
        // C0 controls inside a sequence still act; non-ASCII ends it.
        ("\x1b[1\n2mx", "\nx"),
        ("\x1b[1é", "é"),
    ]);
    let t = term("ab\x1b[31m\x1b7X\x1b[0m\nY\x1b8Z");
    assert_eq!(t.spans(0), [sp("ab", Style::default()), sp("Z", fg(1))]);
    assert_eq!(term("\x1b]x\x1b[31mf").spans(0), [sp("f", fg(1))]);
}

#[test]
fn unterminated_sequences_are_abandoned() {
    let csi = format!("\x1b[{}mX", "1;".repeat(40));
    assert_eq!(lines(&csi), [format!("{};mX", ";1".repeat(7))]);
    let osc = format!("\x1b]8;;{}\x07visible", "x".repeat(5000));
    assert_eq!(lines(&osc), [format!("{}visible", "x".repeat(906))]);
    assert_eq!(
        lines(&format!("\x1b]8;;{}\x1b\\link", "x".repeat(1000))),
        ["link"]
    );
}

#[test]
fn partial_sequences_across_chunks() {
    let mut t = Terminal::new();
    t.feed("\x1b[3");
    t.feed("1mred");
    assert_eq!(t.spans(0), [sp("red", fg(1))]);
    let input =
        "x\x1b[1;38;5;200mA\x1b]0;t\x1b\\B\r\n\x1b[2AC\x1b[38:2::1:2:3mé\x1b7\x1b[KD\tE\x1b8F";
    let whole = snapshot(&term(input));
    for (i, _) in input.char_indices() {
        for (j, _) in input.char_indices().filter(|&(j, _)| j >= i) {
            let mut t = Terminal::new();
            for chunk in [&input[..i], &input[i..j], &input[j..]] {
                t.feed(chunk);
            }
            assert_eq!(snapshot(&t), whole, "split at {i}, {j}");
        }
    }
}

#[test]
fn feed_reports_changed_lines() {
    let mut t = Terminal::new();
    let steps: [(&str, &[usize]); 11] = [
        ("", &[]),
        ("ab", &[0]),
        ("c\nd", &[0, 1]),
        ("\n", &[2]),
        ("\x1b[2A\x1b[31m\x1b[B", &[]),
        ("\r50%\r100%", &[1]),
        ("\x1b[Ax\x1b[2Bz\x1b[3Ay", &[0, 2]),
        ("\x1b[99C\x1b[K\x1b[1J", &[0]),
        ("\x1b[J", &[1, 2]),
        ("\x1b[J\x1b[2K", &[]),
        ("\x1b[5Bq", &[3, 4, 5]),
    ];
    for (chunk, want) in steps {
        assert_eq!(t.feed(chunk), want, "{chunk:?}");
    }
    assert_eq!(t.len(), 6);
}

#[test]
fn moving_between_lines_keeps_styles() {
    let t = term("\x1b[32mok\x1b[0m done\n\x1b[1mnext\x1b[A\x1b[3C\x1b[0m!\x1b[B\x1b[4D\x1b[31m?");
    assert_eq!(
        t.spans(0),
        [sp("ok", fg(2)), sp(" done!", Style::default())]
    );
    assert_eq!(
        t.spans(1),
        [sp("next", attr(|s| s.bold = true)), sp("?", fg(1))]
    );
    assert_eq!(
        (t.spans(9), t.plain(9), t.line_json(9)),
        (vec![], String::new(), json!([]))
    );
}

#[test]
fn json_colours_and_classes() {
    let mut t = term("a\x1b[1;2;3;4;5;9;31;102mb\x1b[0;38;5;196;48;5;16mc");
    t.feed("\x1b[38;5;232;48;5;255md\x1b[0;38;5;21me\x1b[38;2;1;171;255mf");
    let attrs = "ansi-bold ansi-faint ansi-italic ansi-underline ansi-blink ansi-strike";
    assert_eq!(
        t.line_json(0),
        json!([
            {"text": "a"},
            {"text": "b", "class": format!("{attrs} ansi-fg-1 ansi-bg-10")},
            {"text": "c", "fg": "#ff0000", "bg": "#000000"},
            {"text": "d", "fg": "#080808", "bg": "#eeeeee"},
            {"text": "e", "fg": "#0000ff"},
            {"text": "f", "fg": "#01abff"},
        ])
    );
    let t = term("\x1b[7ma\x1b[31mb\x1b[44mc\x1b[38;2;1;2;3md\x1b[27me");
    assert_eq!(
        t.line_json(0),
        json!([
            {"text": "a", "class": "ansi-inverse"},
            {"text": "b", "class": "ansi-inverse ansi-bg-1"},
            {"text": "c", "class": "ansi-fg-4 ansi-bg-1"},
            {"text": "d", "class": "ansi-fg-4", "bg": "#010203"},
            {"text": "e", "class": "ansi-bg-4", "fg": "#010203"},
        ])
    );
}

#[test]
fn plain_text_download() {
    assert_eq!(plain_text(""), "");
    assert_eq!(plain_text("a\x1b[31mb\x1b[0m\r\nc\n"), "ab\nc\n");
    assert_eq!(plain_text("10%\r100%\nok\x1b[K"), "100%\nok");
}

#[test]
fn hundred_thousand_lines() {
    let log: String = (0..100_000)
        .map(|i| format!("\x1b[32mstep {i}\x1b[0m ok\r\n"))
        .collect();
    let mut t = Terminal::new();
    for chunk in log.as_bytes().chunks(4093) {
        t.feed(std::str::from_utf8(chunk).unwrap());
    }
    assert_eq!(
        (t.len(), t.plain(99_999)),
        (100_001, "step 99999 ok".into())
    );
    assert_eq!(t.spans(5)[0], sp("step 5", fg(2)));
}

fn fragment() -> impl Strategy<Value = String> {
    // `|` separates the fragments; none needs it.
    let escapes =
        "\x1b|\x1b[|\x1b]|\x1b\\|\x07|;|m|31m|\x1b[1;31m|\x1b[0m|\x1b[38;5;|\x1b[38;2;1;2;3m|\
        \x1b[2A|\x1b[B|\x1b[3C|\x1b[D|\x1b[2K|\x1b[1K|\x1b[K|\x1b[J|\x1b[1J|\x1b[2J|\x1b[5G|\
        \x1b[2;3H|\x1b[s|\x1b[u|\x1b7|\x1b8|\x1b[?25l|\x1b(B|\x1b]0;t\x07|\x1bP|\x18|\r|\n|\r\n|\
        \x08|\t|é|\x1b[7m|\x1b[E|\x1b[F";
    let escapes: Vec<String> = escapes.split('|').map(String::from).collect();
    prop_oneof![
        "[a-z0-9 ]{0,6}",
        any::<char>().prop_map(String::from),
        prop::sample::select(escapes),
        ("[0-9;:]{0,8}", "[@-~]").prop_map(|(p, f)| format!("\x1b[{p}{f}")),
    ]
}

fn input() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn chunking_does_not_matter(s in input(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let mut whole = Terminal::new();
        let whole_changed = whole.feed(&s);
        let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| bounds[c.index(bounds.len())]).collect();
        points.sort_unstable();
        let (mut t, mut prev, mut changed) = (Terminal::new(), 0, Vec::new());
        for p in points.into_iter().chain([s.len()]) {
            changed.extend(t.feed(&s[prev..p]));
            prev = p;
        }
        changed.sort_unstable();
        changed.dedup();
        prop_assert_eq!(snapshot(&t), snapshot(&whole));
        prop_assert_eq!(changed, whole_changed);
    }

    #[test]
    fn never_panics(chars in prop::collection::vec(any::<char>(), 0..300), s in input()) {
        let mut t = Terminal::new();
        t.feed(&chars.into_iter().collect::<String>());
        t.feed(&s);
        for i in 0..t.len() + 2 {
            let spans = t.spans(i);
            prop_assert!(spans.iter().all(|s| !s.text.is_empty()));
            prop_assert!(spans.windows(2).all(|w| w[0].style != w[1].style));
            t.line_json(i);
        }
    }

    #[test]
    fn plain_input_round_trips(parts in prop::collection::vec("\\PC{0,20}", 0..10)) {
        // An empty log has no lines; otherwise `\n` always starts one.
        let s = parts.join("\n");
        let want: Vec<&str> = if s.is_empty() { vec![] } else { s.split('\n').collect() };
        prop_assert_eq!(lines(&s), want);
        prop_assert_eq!(plain_text(&s), s);
    }
}
