//! The handshake state machine, as one transition table (the `tls-parser` `tls_states.rs`
//! style): which messages a passive observer can still read, when the handshake is
//! over, and which records come too early.
//!
//! Only what is visible on the wire is modelled: in TLS 1.3 everything after the
//! ServerHello is encrypted, so the handshake is over for us once the client sends its
//! first protected record (change_cipher_spec in compatibility mode, or its encrypted
//! Finished); in TLS ≤ 1.2 once both sides have sent change_cipher_spec.

use crate::flow::Direction;

/// An event seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HsEvent {
    /// A ClientHello (also SSLv2-compatible).
    ClientHello,
    /// A ServerHello; `tls13` when it selects TLS 1.3; `hrr` for a HelloRetryRequest.
    ServerHello {
        /// Selects TLS 1.3.
        tls13: bool,
        /// Is a HelloRetryRequest.
        hrr: bool,
    },
    /// Any other plaintext handshake message.
    Handshake(Direction),
    /// A change_cipher_spec record.
    ChangeCipherSpec(Direction),
    /// An application_data record.
    AppData(Direction),
    /// An alert record.
    Alert(Direction),
}

/// Where the handshake stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HsState {
    /// Nothing seen yet.
    #[default]
    Idle,
    /// ClientHello seen, waiting for the server.
    ClientHello,
    /// HelloRetryRequest seen, waiting for the second ClientHello.
    HelloRetry,
    /// TLS ≤ 1.2 after ServerHello; records which sides sent change_cipher_spec.
    Tls12 {
        /// Client sent CCS.
        client_ccs: bool,
        /// Server sent CCS.
        server_ccs: bool,
    },
    /// TLS 1.3 after ServerHello, client not yet protected.
    Tls13,
    /// Both directions protected: nothing more to parse.
    Done,
}

/// Result of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The next state.
    pub next: HsState,
    /// The event came before its direction was protected and should not have.
    pub premature_app_data: bool,
    /// The event does not fit the state (ignored for the state; counted by the caller).
    pub unexpected: bool,
}

impl HsState {
    /// Whether bytes of `dir` are encrypted in this state (bodies are not parsed).
    pub fn protected(self, dir: Direction) -> bool {
        match (self, dir) {
            (HsState::Done, _) => true,
            (HsState::Tls13, Direction::ToClient) => true,
            (HsState::Tls12 { client_ccs, .. }, Direction::ToServer) => client_ccs,
            (HsState::Tls12 { server_ccs, .. }, Direction::ToClient) => server_ccs,
            _ => false,
        }
    }

    /// The transition table. `early_data` says the ClientHello offered 0-RTT, which
    /// makes client application data after the ClientHello legitimate.
    pub fn step(self, ev: HsEvent, early_data: bool) -> Step {
        use Direction::{ToClient, ToServer};
        use HsEvent as E;
        use HsState as S;
        let ok = |next| Step {
            next,
            premature_app_data: false,
            unexpected: false,
        };
        let odd = Step {
            next: self,
            premature_app_data: false,
            unexpected: true,
        };
        let early = Step {
            next: self,
            premature_app_data: true,
            unexpected: false,
        };
        match (self, ev) {
            (S::Idle | S::HelloRetry, E::ClientHello) => ok(S::ClientHello),
            (S::ClientHello, E::ServerHello { hrr: true, .. }) => ok(S::HelloRetry),
            (S::ClientHello, E::ServerHello { tls13: true, .. }) => ok(S::Tls13),
            (S::ClientHello, E::ServerHello { tls13: false, .. }) => ok(S::Tls12 {
                client_ccs: false,
                server_ccs: false,
            }),
            (S::ClientHello | S::HelloRetry, E::AppData(ToServer)) if early_data => ok(self),
            (S::Idle | S::ClientHello | S::HelloRetry, E::AppData(_)) => early,
            (S::ClientHello | S::HelloRetry, E::ChangeCipherSpec(ToServer)) => ok(self),
            (S::Tls12 { server_ccs, .. }, E::ChangeCipherSpec(ToServer)) => ok(if server_ccs {
                S::Done
            } else {
                S::Tls12 {
                    client_ccs: true,
                    server_ccs,
                }
            }),
            (S::Tls12 { client_ccs, .. }, E::ChangeCipherSpec(ToClient)) => ok(if client_ccs {
                S::Done
            } else {
                S::Tls12 {
                    client_ccs,
                    server_ccs: true,
                }
            }),
            (S::Tls12 { .. }, E::AppData(d)) if !self.protected(d) => early,
            (S::Tls13, E::ChangeCipherSpec(ToServer) | E::AppData(ToServer)) => ok(S::Done),
            (S::Tls13, E::AppData(ToClient) | E::ChangeCipherSpec(ToClient)) => ok(self),
            (_, E::Alert(_)) => ok(self),
            (S::Tls12 { .. } | S::Tls13 | S::ClientHello, E::Handshake(_)) => ok(self),
            (S::Done, _) => ok(self),
            _ => odd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{ToClient, ToServer};

    fn run(events: &[HsEvent]) -> (HsState, usize) {
        let mut s = HsState::Idle;
        let mut early = 0;
        for &e in events {
            let st = s.step(e, false);
            if st.premature_app_data {
                early += 1;
            }
            s = st.next;
        }
        (s, early)
    }

    #[test]
    fn full_tls12_handshake_ends_done() {
        let (s, early) = run(&[
            HsEvent::ClientHello,
            HsEvent::ServerHello {
                tls13: false,
                hrr: false,
            },
            HsEvent::Handshake(ToClient),
            HsEvent::Handshake(ToServer),
            HsEvent::ChangeCipherSpec(ToServer),
            HsEvent::ChangeCipherSpec(ToClient),
        ]);
        assert_eq!((s, early), (HsState::Done, 0));
    }

    #[test]
    fn tls13_is_done_when_the_client_is_protected() {
        let (s, _) = run(&[
            HsEvent::ClientHello,
            HsEvent::ServerHello {
                tls13: true,
                hrr: false,
            },
            HsEvent::AppData(ToClient),
        ]);
        assert_eq!(s, HsState::Tls13);
        assert_eq!(
            s.step(HsEvent::AppData(ToServer), false).next,
            HsState::Done
        );
    }

    #[test]
    fn app_data_before_server_hello_is_premature() {
        let (_, early) = run(&[HsEvent::ClientHello, HsEvent::AppData(ToServer)]);
        assert_eq!(early, 1);
        let st = HsState::ClientHello.step(HsEvent::AppData(ToServer), true);
        assert!(!st.premature_app_data);
    }

    #[test]
    fn hello_retry_request_waits_for_second_client_hello() {
        let (s, _) = run(&[
            HsEvent::ClientHello,
            HsEvent::ServerHello {
                tls13: true,
                hrr: true,
            },
            HsEvent::ClientHello,
            HsEvent::ServerHello {
                tls13: true,
                hrr: false,
            },
        ]);
        assert_eq!(s, HsState::Tls13);
    }
}
