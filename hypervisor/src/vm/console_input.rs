//! Which VM the physical console's input goes to, and the key sequence that
//! switches it: `Ctrl-T` then a digit picks VM number N (board-file order);
//! `Ctrl-T` `n` picks the next VM; `Ctrl-T` `Ctrl-T` sends one `Ctrl-T`.
//! Anything else after `Ctrl-T` is dropped with a hint.

pub const ESCAPE: u8 = 0x14; // Ctrl-T

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Deliver this byte to the focused VM.
    Byte(u8),
    /// Input now goes to VM `n`.
    Switch(usize),
    /// An escape sequence that means nothing; print the help.
    Help,
    /// Swallowed (the escape key itself).
    Nothing,
}

#[derive(Debug, Clone, Copy)]
pub struct Router {
    focus: usize,
    vms: usize,
    escaped: bool,
}

impl Router {
    pub const fn new(first: usize, vms: usize) -> Router {
        Router {
            focus: first,
            vms,
            escaped: false,
        }
    }

    pub fn focus(&self) -> usize {
        self.focus
    }

    pub fn feed(&mut self, b: u8) -> Input {
        if !self.escaped {
            if b == ESCAPE {
                self.escaped = true;
                return Input::Nothing;
            }
            return Input::Byte(b);
        }
        self.escaped = false;
        match b {
            ESCAPE => Input::Byte(ESCAPE),
            b'0'..=b'9' if ((b - b'0') as usize) < self.vms => {
                self.focus = (b - b'0') as usize;
                Input::Switch(self.focus)
            }
            b'n' if self.vms > 0 => {
                self.focus = (self.focus + 1) % self.vms;
                Input::Switch(self.focus)
            }
            _ => Input::Help,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_and_switching() {
        let mut r = Router::new(1, 3);
        assert_eq!(r.feed(b'a'), Input::Byte(b'a'));
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(r.feed(b'2'), Input::Switch(2));
        assert_eq!(r.focus(), 2);
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(r.feed(b'n'), Input::Switch(0));
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(r.feed(ESCAPE), Input::Byte(ESCAPE));
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(r.feed(b'7'), Input::Help, "no VM 7");
        assert_eq!(r.focus(), 0);
        assert_eq!(r.feed(b'x'), Input::Byte(b'x'));
    }
}
