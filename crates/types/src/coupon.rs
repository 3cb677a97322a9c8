//! The pattern of generated coupon codes (`WB-{AAAA}-{9999}`), parsed once: the engine checks a
//! rule's pattern with it, the store generates codes from it.

/// One part of a [`CodePattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodePart {
    /// Written as is.
    Literal(String),
    /// One random character from [`CodePattern::alphabet`]: `A` (a capital letter), `9` (a
    /// digit) or `X` (either), written inside braces.
    Random(char),
}

/// A generated pool's code pattern: literal text with random runs in braces, `{AAAA}` four
/// capital letters, `{9999}` four digits, `{XXXX}` four of either. Letters that are easily
/// misread (`I`, `O`) are left out, as is nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePattern {
    parts: Vec<CodePart>,
}

/// The fewest random bits a pattern must have (about 16 million codes), so codes cannot be
/// guessed from one another.
pub const MIN_CODE_BITS: f64 = 24.0;

impl CodePattern {
    /// The characters a random part draws from.
    #[must_use]
    pub fn alphabet(class: char) -> &'static [u8] {
        match class {
            'A' => b"ABCDEFGHJKLMNPQRSTUVWXYZ",
            '9' => b"0123456789",
            _ => b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789",
        }
    }

    /// Parses `WB-{AAAA}-{9999}`.
    ///
    /// # Errors
    /// What is wrong, in one line with a hint: an unclosed brace, an unknown character inside
    /// braces, too few random characters (fewer than [`MIN_CODE_BITS`] bits), a space.
    pub fn parse(text: &str) -> Result<CodePattern, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '{' => {
                    if !literal.is_empty() {
                        parts.push(CodePart::Literal(std::mem::take(&mut literal)));
                    }
                    let mut closed = false;
                    for inner in chars.by_ref() {
                        match inner {
                            '}' => {
                                closed = true;
                                break;
                            }
                            'A' | '9' | 'X' => parts.push(CodePart::Random(inner)),
                            other => {
                                return Err(format!(
                                    "'{other}' inside braces: use A (a letter), 9 (a digit) or X (either)"
                                ));
                            }
                        }
                    }
                    if !closed {
                        return Err("a '{' is not closed: write random runs as {AAAA}".into());
                    }
                }
                '}' => return Err("a '}' without its '{'".into()),
                c if c.is_whitespace() || c.is_control() => {
                    return Err("a code cannot contain spaces".into());
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(CodePart::Literal(literal));
        }
        let pattern = CodePattern { parts };
        let bits = pattern.bits();
        if bits < MIN_CODE_BITS {
            return Err(format!(
                "only {bits:.0} random bits: codes could be guessed; use at least {MIN_CODE_BITS:.0} \
                 (e.g. {{AAAA}}-{{9999}}, 32 bits)"
            ));
        }
        Ok(pattern)
    }

    /// The parts, in order.
    #[must_use]
    pub fn parts(&self) -> &[CodePart] {
        &self.parts
    }

    /// How many random bits a code has: log2 of the number of codes the pattern can make.
    #[must_use]
    pub fn bits(&self) -> f64 {
        self.parts
            .iter()
            .map(|part| match part {
                CodePart::Literal(_) => 0.0,
                CodePart::Random(class) => (Self::alphabet(*class).len() as f64).log2(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_into_literal_and_random_parts() {
        let pattern = CodePattern::parse("WB-{AAAA}-{9999}").unwrap();
        assert_eq!(pattern.parts().len(), 10);
        assert_eq!(pattern.parts()[0], CodePart::Literal("WB-".into()));
        assert!(pattern.bits() > 31.0);
        assert!(
            CodePattern::parse("WB-{AA}")
                .unwrap_err()
                .contains("random bits")
        );
        assert!(
            CodePattern::parse("{AAAA")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(CodePattern::parse("{AAAAB}").unwrap_err().contains("'B'"));
        assert!(
            CodePattern::parse("A {XXXXXXXX}")
                .unwrap_err()
                .contains("spaces")
        );
    }
}
