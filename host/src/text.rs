//! Small text helpers shared by the operator reports.

/// Longest folded text kept, in characters.
const FOLDED_MAX_CHARS: usize = 160;

/// `text` with the numbers that vary from one event to the next folded to `#` (digits inside
/// ids, times and amounts: any token mixing digits with letters or punctuation, and any number of
/// four digits or more), cut at 160 characters, so that errors and differences that differ only
/// in such numbers group together. Short plain numbers stay: `HTTP 400` and `HTTP 422` are
/// different errors.
pub fn fold_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(FOLDED_MAX_CHARS));
    let chars: Vec<char> = text.chars().collect();
    let in_token = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+');
    let mut i = 0;
    while i < chars.len() {
        if !in_token(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && in_token(chars[i]) {
            i += 1;
        }
        // Punctuation ending a token (`400:`, `A-17.`) is not part of it.
        while i > start + 1 && matches!(chars[i - 1], '-' | '_' | '.' | ':' | '+') {
            i -= 1;
        }
        let token = &chars[start..i];
        let all_digits = token.iter().all(char::is_ascii_digit);
        if all_digits && token.len() < 4 {
            out.extend(token);
            continue;
        }
        let mut previous_digit = false;
        for &c in token {
            if c.is_ascii_digit() {
                if !previous_digit {
                    out.push('#');
                }
                previous_digit = true;
            } else {
                out.push(c);
                previous_digit = false;
            }
        }
    }
    if out.chars().count() > FOLDED_MAX_CHARS {
        out = out.chars().take(FOLDED_MAX_CHARS).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_times_and_long_numbers_fold_and_status_codes_stay() {
        assert_eq!(
            super::fold_digits("retry: HTTP 503: after 2500 ms for order A-17. at 2026-11-25T10:15:00Z (attempt 8)"),
            "retry: HTTP 503: after # ms for order A-#. at #-#-#T#:#:#Z (attempt 8)"
        );
    }
}
