//! Recogniser tests. TLS bytes come from rustls, compressed bodies from flate2; fixed
//! binary headers (WireGuard, OpenVPN, IKE, ...) are built field by field with the spec
//! cited beside each field.

use super::*;
use crate::flow::Direction::{ToClient, ToServer};
use std::io::Write;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

/// splitmix64: a small deterministic generator for random test buffers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            let n = chunk.len();
            chunk.copy_from_slice(&v[..n]);
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

fn tcp(st: &mut ProtocolState, dir: Direction, port: u16, data: &[u8]) -> Option<Recognition> {
    st.observe(Transport::Tcp, dir, 50_000, port, data)
}

fn udp(st: &mut ProtocolState, dir: Direction, port: u16, data: &[u8]) -> Option<Recognition> {
    st.observe(Transport::Udp, dir, 50_000, port, data)
}

fn proto(st: &ProtocolState) -> Option<AppProto> {
    st.current().map(|r| r.proto)
}

fn confidence(st: &ProtocolState) -> Option<Confidence> {
    st.current().map(|r| r.confidence)
}

#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for FixedCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A real ClientHello and the server's first flight (ServerHello ...) from rustls.
fn rustls_handshake() -> (Vec<u8>, Vec<u8>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("c2.example.net").expect("name");
    let mut client = rustls::ClientConnection::new(Arc::new(client_cfg), name).expect("client");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("client hello");

    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .expect("key");
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            pkcs8.as_ref().to_vec(),
        )))
        .expect("signing key");
    // The certificate is never validated here: the server only needs something to send.
    let cert = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    let certified = Arc::new(rustls::sign::CertifiedKey::new(vec![cert], key));
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(certified)));
    let mut server = rustls::ServerConnection::new(Arc::new(server_cfg)).expect("server");
    server.read_tls(&mut hello.as_slice()).expect("read hello");
    server.process_new_packets().expect("process hello");
    let mut flight = Vec::new();
    server.write_tls(&mut flight).expect("server flight");
    (hello, flight)
}

/// A DNS query built by RFC 1035 §4.1: header, then QNAME labels, QTYPE, QCLASS.
fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // flags: RD
    m.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    m.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // AN, NS, AR counts
    for label in name.split('.') {
        m.push(u8::try_from(label.len()).expect("label"));
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // QCLASS IN
    m
}

// ---------------------------------------------------------------------------------------
// TLS family
// ---------------------------------------------------------------------------------------

#[test]
fn rustls_client_hello_is_weak_tls_and_server_hello_makes_it_strong() {
    let (hello, flight) = rustls_handshake();
    let mut st = ProtocolState::new();
    let r = tcp(&mut st, ToServer, 4444, &hello).expect("verdict");
    assert_eq!(r.proto, AppProto::Tls);
    assert_eq!(r.confidence, Confidence::Weak);
    assert!(r.evidence.contains("client_hello"), "{}", r.evidence);
    assert!(!st.done());
    let r = tcp(&mut st, ToClient, 4444, &flight).expect("upgrade");
    assert_eq!(r.confidence, Confidence::Strong);
    assert!(st.done());
}

#[test]
fn client_hello_split_into_tiny_segments_is_still_tls() {
    let (hello, _) = rustls_handshake();
    let mut st = ProtocolState::new();
    let mut verdict = None;
    for chunk in hello.chunks(3) {
        if let Some(r) = tcp(&mut st, ToServer, 443, chunk) {
            verdict = Some(r);
            break;
        }
    }
    assert_eq!(verdict.map(|r| r.proto), Some(AppProto::Tls));
}

#[test]
fn server_hello_seen_first_is_tls_when_the_capture_missed_the_client() {
    // Without the SYN the first sender is taken for the client: roles are swapped.
    let (_, flight) = rustls_handshake();
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 51_000, &flight);
    assert_eq!(proto(&st), Some(AppProto::Tls));
}

#[test]
fn tls_on_port_853_is_dns_over_tls() {
    let (hello, _) = rustls_handshake();
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 853, &hello);
    assert_eq!(proto(&st), Some(AppProto::DnsOverTls));
}

#[test]
fn tls_to_configured_resolver_becomes_dns_over_https() {
    let (hello, _) = rustls_handshake();
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 443, &hello);
    let resolvers = DohResolvers(vec!["1.1.1.0/24".parse().expect("cidr")]);
    st.apply_doh_resolvers("8.8.8.8".parse().expect("ip"), &resolvers);
    assert_eq!(proto(&st), Some(AppProto::Tls));
    st.apply_doh_resolvers("1.1.1.1".parse().expect("ip"), &resolvers);
    assert_eq!(proto(&st), Some(AppProto::DnsOverHttps));
}

#[test]
fn sslv2_compatible_client_hello_is_tls() {
    // RFC 5246 appendix E.2: msg_length (2, high bit set), msg_type 1, version 0x0301,
    // cipher_spec_length 3, session_id_length 0, challenge_length 16, then the values.
    let mut m = vec![0x80, 0, 1, 0x03, 0x01, 0, 3, 0, 0, 0, 16];
    m.extend_from_slice(&[0x00, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    m.extend_from_slice(&[0x5a; 16]); // challenge
    m[1] = u8::try_from(m.len() - 2).expect("len");
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 443, &m);
    assert_eq!(proto(&st), Some(AppProto::Tls));
}

#[test]
fn tls_record_with_wrong_handshake_type_is_not_tls() {
    let (mut hello, _) = rustls_handshake();
    hello[5] = 0x0b; // certificate instead of client_hello as the first message
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 443, &hello);
    assert_eq!(proto(&st), None);
}

// ---------------------------------------------------------------------------------------
// SSH, HTTP, banners, telnet, socks
// ---------------------------------------------------------------------------------------

#[test]
fn ssh_banners_in_both_directions_are_strong_ssh() {
    let mut st = ProtocolState::new();
    tcp(
        &mut st,
        ToClient,
        2222,
        b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n",
    );
    assert_eq!(confidence(&st), Some(Confidence::Weak));
    tcp(&mut st, ToServer, 2222, b"SSH-2.0-PuTTY_Release_0.80\r\n");
    assert_eq!(proto(&st), Some(AppProto::Ssh));
    assert_eq!(confidence(&st), Some(Confidence::Strong));
    assert!(st.done());
}

#[test]
fn ssh_banner_split_after_three_bytes_waits_then_matches() {
    let mut st = ProtocolState::new();
    assert_eq!(tcp(&mut st, ToServer, 22, b"SSH"), None);
    assert!(!st.done());
    let r = tcp(&mut st, ToServer, 22, b"-1.99-Cisco\r\n");
    assert_eq!(r.map(|r| r.proto), Some(AppProto::Ssh));
}

#[test]
fn http_request_and_response_are_strong_http() {
    let mut st = ProtocolState::new();
    tcp(
        &mut st,
        ToServer,
        8081,
        b"GET /index.html HTTP/1.1\r\nHost: a.example\r\n\r\n",
    );
    assert_eq!(proto(&st), Some(AppProto::Http));
    tcp(
        &mut st,
        ToClient,
        8081,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(confidence(&st), Some(Confidence::Strong));
}

#[test]
fn http_request_line_split_over_calls_is_buffered_until_complete() {
    let mut st = ProtocolState::new();
    assert_eq!(tcp(&mut st, ToServer, 80, b"POST /gate.p"), None);
    assert_eq!(tcp(&mut st, ToServer, 80, b"hp HTTP/1."), None);
    let r = tcp(&mut st, ToServer, 80, b"0\r\nHost: x\r\n\r\n");
    assert_eq!(r.map(|r| r.proto), Some(AppProto::Http));
}

#[test]
fn text_that_never_ends_its_line_stops_at_the_prefix_cap() {
    let mut st = ProtocolState::new();
    tcp(&mut st, ToClient, 25, b"220 ");
    for _ in 0..20 {
        tcp(&mut st, ToClient, 25, &[b'a'; 64]);
    }
    assert_eq!(proto(&st), None);
    // The client direction is still open, the server direction gave up at the cap.
    assert!(st.dirs[1].phase == DirPhase::Finished);
    assert!(st.dirs[1].prefix.is_none());
}

#[test]
fn smtp_greeting_then_ehlo_is_strong_smtp() {
    let mut st = ProtocolState::new();
    tcp(
        &mut st,
        ToClient,
        25,
        b"220 mx.example.org ESMTP Postfix\r\n",
    );
    assert_eq!(proto(&st), Some(AppProto::Smtp));
    tcp(&mut st, ToServer, 25, b"EHLO client.example\r\n");
    assert_eq!(confidence(&st), Some(Confidence::Strong));
}

#[test]
fn ftp_imap_and_pop3_greetings_are_named() {
    for (banner, want) in [
        (&b"220 ProFTPD Server ready.\r\n"[..], AppProto::Ftp),
        (
            &b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"[..],
            AppProto::Imap,
        ),
        (&b"+OK POP3 server ready\r\n"[..], AppProto::Pop3),
    ] {
        let mut st = ProtocolState::new();
        tcp(&mut st, ToClient, 9999, banner);
        assert_eq!(proto(&st), Some(want));
    }
}

#[test]
fn telnet_option_negotiation_is_telnet() {
    // RFC 854: IAC DO TERMINAL-TYPE(24), IAC DO NAWS(31), IAC WILL ECHO(1).
    let mut st = ProtocolState::new();
    tcp(
        &mut st,
        ToClient,
        23,
        &[0xff, 0xfd, 24, 0xff, 0xfd, 31, 0xff, 0xfb, 1],
    );
    assert_eq!(proto(&st), Some(AppProto::Telnet));
}

#[test]
fn socks5_greeting_and_reply_are_strong_socks() {
    // RFC 1928 §3: VER 5, NMETHODS 1, METHODS [0 = no authentication]; reply VER, METHOD.
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 1080, &[5, 1, 0]);
    assert_eq!(proto(&st), Some(AppProto::Socks));
    tcp(&mut st, ToClient, 1080, &[5, 0]);
    assert_eq!(confidence(&st), Some(Confidence::Strong));
}

#[test]
fn socks4_connect_request_is_socks() {
    // VN 4, CD 1 (connect), DSTPORT 80, DSTIP 93.184.216.34, USERID "bob", NUL.
    let mut st = ProtocolState::new();
    tcp(
        &mut st,
        ToServer,
        1080,
        &[4, 1, 0, 80, 93, 184, 216, 34, b'b', b'o', b'b', 0],
    );
    assert_eq!(proto(&st), Some(AppProto::Socks));
}

// ---------------------------------------------------------------------------------------
// RDP, Kerberos, SMB, DCE/RPC
// ---------------------------------------------------------------------------------------

#[test]
fn tpkt_x224_connection_request_is_rdp() {
    // RFC 1006 TPKT: version 3, reserved 0, length 19. X.224 CR: LI 14, code 0xe0,
    // dst-ref 0, src-ref 0, class 0, then an RDP negotiation request (type 1, flags 0,
    // length 8, requestedProtocols = PROTOCOL_SSL|PROTOCOL_HYBRID).
    let m = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00,
        0x03, 0x00, 0x00, 0x00,
    ];
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 3390, &m);
    assert_eq!(proto(&st), Some(AppProto::Rdp));
}

#[test]
fn kerberos_as_req_over_tcp_is_kerberos() {
    // RFC 4120 §5.4.1: AS-REQ ::= [APPLICATION 10] KDC-REQ; KDC-REQ ::= SEQUENCE {
    // pvno [1] INTEGER (5), msg-type [2] INTEGER (10), ... }.
    let kdc_req_body = [0xa2, 0x03, 0x02, 0x01, 0x0a]; // msg-type [2] 10
    let mut seq = vec![0xa1, 0x03, 0x02, 0x01, 0x05]; // pvno [1] 5
    seq.extend_from_slice(&kdc_req_body);
    let mut inner = vec![0x30, u8::try_from(seq.len()).expect("len")];
    inner.extend_from_slice(&seq);
    let mut msg = vec![0x6a, u8::try_from(inner.len()).expect("len")];
    msg.extend_from_slice(&inner);
    let mut framed = u32::try_from(msg.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&msg);
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 88, &framed);
    assert_eq!(proto(&st), Some(AppProto::Kerberos));
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 88, &msg);
    assert_eq!(proto(&st), Some(AppProto::Kerberos));
}

#[test]
fn smb2_and_smb3_transform_headers_are_smb() {
    for magic in [0xfe, 0xfd, 0xff] {
        // RFC 1002 session message: type 0, 24-bit length; [MS-SMB2] 2.2.1 protocol id.
        let mut m = vec![0x00, 0x00, 0x00, 0x40, magic, b'S', b'M', b'B'];
        m.resize(0x44, 0);
        let mut st = ProtocolState::new();
        tcp(&mut st, ToServer, 445, &m);
        assert_eq!(proto(&st), Some(AppProto::Smb), "magic {magic:#x}");
    }
}

#[test]
fn dcerpc_bind_is_dcerpc() {
    // C706 §12.6.3.1: rpc_vers 5, minor 0, PTYPE bind (11), flags first|last (3),
    // drep little-endian ASCII IEEE (10 00 00 00), frag_length 72, auth_length 0, call_id 1.
    let mut m = vec![5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0, 0, 0, 1, 0, 0, 0];
    m.resize(72, 0);
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 49158, &m);
    assert_eq!(proto(&st), Some(AppProto::Dcerpc));
}

// ---------------------------------------------------------------------------------------
// UDP: DNS, NTP, DHCP, QUIC, DTLS, WireGuard, OpenVPN, IKE, ESP
// ---------------------------------------------------------------------------------------

#[test]
fn dns_query_built_by_rfc_is_dns_and_port_5353_names_it_mdns() {
    let q = dns_query(0x1234, "www.example.com", 1);
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 53, &q);
    assert_eq!(proto(&st), Some(AppProto::Dns));
    let mut st = ProtocolState::new();
    st.observe(Transport::Udp, ToServer, 5353, 5353, &q);
    assert_eq!(proto(&st), Some(AppProto::Mdns));
}

#[test]
fn dns_over_tcp_with_length_prefix_is_dns() {
    let q = dns_query(7, "example.org", 28);
    let mut framed = u16::try_from(q.len()).expect("len").to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let mut st = ProtocolState::new();
    tcp(&mut st, ToServer, 53, &framed);
    assert_eq!(proto(&st), Some(AppProto::Dns));
}

#[test]
fn dns_header_with_truncated_question_is_not_dns() {
    let q = dns_query(7, "example.org", 28);
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 53, &q[..q.len() - 5]);
    assert_eq!(proto(&st), None);
}

#[test]
fn ntp_client_request_and_server_reply_are_strong_ntp() {
    // RFC 5905 §7.3: LI 0, VN 4, mode 3 (client); stratum 0, poll 6, precision -20; the
    // rest zero but the transmit timestamp.
    let mut req = vec![0u8; 48];
    req[0] = (4 << 3) | 3;
    req[2] = 6;
    req[3] = 0xec;
    req[40..48].copy_from_slice(&[0xe9, 0x0f, 0x3a, 0x10, 1, 2, 3, 4]);
    let mut rep = vec![0u8; 48];
    rep[0] = (4 << 3) | 4; // server
    rep[1] = 2; // stratum 2
    rep[2] = 6;
    rep[3] = 0xe9;
    rep[6] = 0x01; // root delay 0.0039 s
    rep[12..16].copy_from_slice(&[192, 0, 2, 1]); // reference id
    let mut st = ProtocolState::new();
    st.observe(Transport::Udp, ToServer, 123, 123, &req);
    st.observe(Transport::Udp, ToClient, 123, 123, &rep);
    assert_eq!(proto(&st), Some(AppProto::Ntp));
    assert_eq!(confidence(&st), Some(Confidence::Strong));
}

#[test]
fn dhcp_discover_is_dhcp() {
    // RFC 2131 §2: op 1, htype 1, hlen 6, hops 0, ..., magic cookie at 236, options.
    let mut m = vec![0u8; 300];
    m[0] = 1;
    m[1] = 1;
    m[2] = 6;
    m[236..240].copy_from_slice(&[0x63, 0x82, 0x53, 0x63]);
    m[240..243].copy_from_slice(&[53, 1, 1]); // DHCP message type: discover
    let mut st = ProtocolState::new();
    st.observe(Transport::Udp, ToServer, 68, 67, &m);
    assert_eq!(proto(&st), Some(AppProto::Dhcp));
}

/// A QUIC v1 long-header Initial (RFC 9000 §17.2.2) padded to `len` bytes.
fn quic_initial(len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut m = vec![0xc3]; // form 1, fixed 1, type Initial (0), pn length 4
    m.extend_from_slice(&1u32.to_be_bytes()); // version 1
    m.push(8); // DCID length
    m.extend_from_slice(&rng.bytes(8));
    m.push(0); // SCID length
    m.push(0); // token length (varint 0)
    let rest = len - m.len();
    m.extend_from_slice(&rng.bytes(rest)); // length, packet number, protected payload
    m
}

#[test]
fn quic_initial_padded_to_1200_is_quic_on_any_port() {
    let mut rng = Rng(1);
    let mut st = ProtocolState::new();
    st.observe(
        Transport::Udp,
        ToServer,
        55_000,
        4433,
        &quic_initial(1250, &mut rng),
    );
    assert_eq!(proto(&st), Some(AppProto::Quic));
}

#[test]
fn quic_initial_shorter_than_1200_is_not_quic() {
    let mut rng = Rng(2);
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 443, &quic_initial(1199, &mut rng));
    assert_eq!(proto(&st), None);
}

#[test]
fn quic_short_headers_repeating_a_connection_id_are_quic_only_on_443() {
    // RFC 9000 §17.3.1: 0b01xxxxxx, then the 8-byte destination connection id.
    let mut rng = Rng(9);
    let cid = rng.bytes(8);
    let pkt = |rng: &mut Rng| {
        let mut m = vec![0x41];
        m.extend_from_slice(&cid);
        m.extend_from_slice(&rng.bytes(60));
        m
    };
    for (port, want) in [(443, Some(AppProto::Quic)), (4444, None)] {
        let mut st = ProtocolState::new();
        udp(&mut st, ToServer, port, &pkt(&mut rng));
        udp(&mut st, ToServer, port, &pkt(&mut rng));
        assert_eq!(proto(&st), want, "port {port}");
    }
}

#[test]
fn dtls_client_hello_record_is_dtls() {
    // RFC 6347 §4.1: type 22, version fe fd, epoch 0, seq 0, length; handshake type 1.
    let body_len = 60u16;
    let mut m = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&body_len.to_be_bytes());
    m.push(1); // client_hello
    m.resize(13 + usize::from(body_len), 0x11);
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 4400, &m);
    assert_eq!(proto(&st), Some(AppProto::Dtls));
}

/// WireGuard message (whitepaper §5.4.2–5.4.6): type, three reserved zero bytes, then
/// `index_a` (sender index for types 1/2, receiver index for 4), `index_b` (receiver
/// index for type 2), random rest; exact total length.
fn wg(msg_type: u8, index_a: [u8; 4], index_b: [u8; 4], len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut m = vec![msg_type, 0, 0, 0];
    m.extend_from_slice(&index_a);
    if msg_type == 2 {
        m.extend_from_slice(&index_b);
    }
    let rest = len - m.len();
    m.extend_from_slice(&rng.bytes(rest));
    m
}

#[test]
fn wireguard_response_echoing_initiator_index_is_strong() {
    let mut rng = Rng(3);
    let init = wg(1, [1, 2, 3, 4], [0; 4], 148, &mut rng);
    let resp = wg(2, [9, 9, 9, 9], [1, 2, 3, 4], 92, &mut rng);
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 51820, &init);
    assert_eq!(confidence(&st), Some(Confidence::Weak));
    udp(&mut st, ToClient, 51820, &resp);
    assert_eq!(proto(&st), Some(AppProto::Wireguard));
    assert_eq!(confidence(&st), Some(Confidence::Strong));
}

#[test]
fn wireguard_initiation_with_wrong_length_is_not_wireguard() {
    let mut rng = Rng(4);
    let init = wg(1, [1, 2, 3, 4], [0; 4], 149, &mut rng);
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 51820, &init);
    assert_eq!(proto(&st), None);
}

/// An OpenVPN control packet (`ssl_pkt.h`): opcode << 3 | key id, 8-byte session id,
/// [HMAC 20 + packet id 4 + time 4 with tls-auth], ack array length, acked packet ids,
/// remote session id (when acking), message packet id.
fn ovpn(op: u8, sid: [u8; 8], acks: &[u32], remote: Option<[u8; 8]>) -> Vec<u8> {
    let mut m = vec![op << 3];
    m.extend_from_slice(&sid);
    m.push(u8::try_from(acks.len()).expect("acks"));
    for a in acks {
        m.extend_from_slice(&a.to_be_bytes());
    }
    if let Some(r) = remote {
        m.extend_from_slice(&r);
    }
    m.extend_from_slice(&0u32.to_be_bytes());
    m
}

const CLIENT_SID: [u8; 8] = [0x33, 0x48, 0x57, 0x70, 0x3d, 0x96, 0xdb, 0x39];
const SERVER_SID: [u8; 8] = [0xd3, 0x1c, 0x3a, 0x69, 0x64, 0x60, 0x2f, 0xa0];

#[test]
fn openvpn_udp_server_echoing_client_session_id_is_strong() {
    let reset = ovpn(7, CLIENT_SID, &[], None); // P_CONTROL_HARD_RESET_CLIENT_V2
    let reply = ovpn(8, SERVER_SID, &[0], Some(CLIENT_SID)); // HARD_RESET_SERVER_V2
    let mut st = ProtocolState::new();
    assert_eq!(udp(&mut st, ToServer, 13680, &reset), None);
    let r = udp(&mut st, ToClient, 13680, &reply).expect("verdict");
    assert_eq!(r.proto, AppProto::Openvpn);
    assert_eq!(r.confidence, Confidence::Strong);
}

#[test]
fn openvpn_udp_client_only_packets_repeating_session_id_are_weak_openvpn() {
    let reset = ovpn(7, CLIENT_SID, &[], None);
    let ack = ovpn(5, CLIENT_SID, &[0], Some(SERVER_SID)); // P_ACK_V1
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 443, &reset);
    udp(&mut st, ToServer, 443, &ack);
    assert_eq!(proto(&st), Some(AppProto::Openvpn));
    assert_eq!(confidence(&st), Some(Confidence::Weak));
}

#[test]
fn openvpn_tcp_with_length_prefix_and_echo_is_strong() {
    let frame = |p: Vec<u8>| {
        let mut f = u16::try_from(p.len()).expect("len").to_be_bytes().to_vec();
        f.extend_from_slice(&p);
        f
    };
    let mut st = ProtocolState::new();
    tcp(
        &mut st,
        ToServer,
        443,
        &frame(ovpn(7, CLIENT_SID, &[], None)),
    );
    assert_eq!(proto(&st), None);
    tcp(
        &mut st,
        ToClient,
        443,
        &frame(ovpn(8, SERVER_SID, &[0], Some(CLIENT_SID))),
    );
    assert_eq!(proto(&st), Some(AppProto::Openvpn));
    assert_eq!(confidence(&st), Some(Confidence::Strong));
}

#[test]
fn openvpn_opcode_without_repeated_session_id_is_not_openvpn() {
    let mut rng = Rng(5);
    let mut st = ProtocolState::new();
    let mut a = rng.bytes(60);
    a[0] = 7 << 3;
    let mut b = rng.bytes(60);
    b[0] = 5 << 3;
    udp(&mut st, ToServer, 1194, &a);
    udp(&mut st, ToServer, 1194, &b);
    assert_eq!(proto(&st), None);
}

/// An IKEv2 IKE_SA_INIT header (RFC 7296 §3.1) with `body` bytes of payloads.
fn ike_header(ispi: [u8; 8], rspi: [u8; 8], body: usize) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&ispi); // initiator SPI
    m.extend_from_slice(&rspi); // responder SPI
    m.push(33); // next payload: SA
    m.push(0x20); // major version 2, minor 0
    m.push(34); // exchange type IKE_SA_INIT
    m.push(0x08); // flags: initiator
    m.extend_from_slice(&0u32.to_be_bytes()); // message id
    m.extend_from_slice(&u32::try_from(28 + body).expect("len").to_be_bytes());
    m.resize(28 + body, 0x22);
    m
}

#[test]
fn ikev2_sa_init_and_response_echoing_spi_are_strong_ike() {
    let ispi = [1, 2, 3, 4, 5, 6, 7, 8];
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 500, &ike_header(ispi, [0; 8], 200));
    assert_eq!(proto(&st), Some(AppProto::Ike));
    udp(&mut st, ToClient, 500, &ike_header(ispi, [9; 8], 180));
    assert_eq!(confidence(&st), Some(Confidence::Strong));
}

#[test]
fn ike_with_length_field_not_equal_to_datagram_is_not_ike() {
    let mut m = ike_header([1; 8], [0; 8], 200);
    m.push(0);
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 500, &m);
    assert_eq!(proto(&st), None);
}

#[test]
fn ip_protocol_50_is_strong_esp() {
    let mut st = ProtocolState::new();
    let r = st.observe(
        Transport::Other(50),
        ToServer,
        0,
        0,
        &[1, 2, 3, 4, 0, 0, 0, 1],
    );
    assert_eq!(
        r.map(|r| (r.proto, r.confidence)),
        Some((AppProto::Esp, Confidence::Strong))
    );
    assert!(st.done());
}

#[test]
fn esp_in_udp_on_4500_with_repeated_spi_is_esp() {
    let mut rng = Rng(6);
    let pkt = |seq: u32, rng: &mut Rng| {
        let mut m = vec![0xc0, 0xff, 0xee, 0x01]; // SPI (RFC 4303 §2.1)
        m.extend_from_slice(&seq.to_be_bytes()); // sequence number
        m.extend_from_slice(&rng.bytes(80)); // IV + ciphertext + ICV
        m
    };
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 4500, &pkt(1, &mut rng));
    udp(&mut st, ToServer, 4500, &pkt(2, &mut rng));
    assert_eq!(proto(&st), Some(AppProto::Esp));
    // The same on another port is not named: the content is too thin without the port.
    let mut st = ProtocolState::new();
    udp(&mut st, ToServer, 4501, &pkt(1, &mut rng));
    udp(&mut st, ToServer, 4501, &pkt(2, &mut rng));
    assert_eq!(proto(&st), None);
}

// ---------------------------------------------------------------------------------------
// Random input and bounds
// ---------------------------------------------------------------------------------------

#[test]
fn random_buffers_are_almost_never_recognised() {
    let mut rng = Rng(0x5eed);
    let mut hits: Vec<(AppProto, &'static str, usize)> = Vec::new();
    let rounds = 100_000;
    for i in 0..rounds {
        let len = 1 + usize::try_from(rng.next() % 1500).expect("len");
        let a = rng.bytes(len);
        let b = rng.bytes(len);
        let transport = if i % 2 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let dir = if i % 4 < 2 { ToServer } else { ToClient };
        let mut st = ProtocolState::new();
        st.observe(transport, dir, 40_000 + (i % 1000) as u16, 4444, &a);
        // A second message: the TCP stream continues, or a second datagram arrives.
        st.observe(transport, dir, 40_000, 4444, &b);
        if let Some(r) = st.current() {
            hits.push((r.proto, r.evidence, len));
        }
    }
    eprintln!(
        "random buffers recognised: {} of {rounds}: {hits:?}",
        hits.len()
    );
    assert!(hits.len() <= 2, "{hits:?}");
}

#[test]
fn protocol_state_stays_small() {
    let size = std::mem::size_of::<ProtocolState>();
    eprintln!("size_of::<ProtocolState>() = {size}");
    assert!(size <= 160, "{size}");
}

// ---------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------

#[test]
fn flate2_gzip_and_zlib_streams_are_recognised_by_magic() {
    let data = vec![b'x'; 1000];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data).expect("gzip");
    let gz = gz.finish().expect("gzip");
    assert_eq!(content_kind(&gz), Some(ContentKind::Gzip));
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&data).expect("zlib");
    let z = z.finish().expect("zlib");
    assert_eq!(content_kind(&z), Some(ContentKind::Zlib));
}

#[test]
fn media_magics_are_recognised() {
    let cases: [(&[u8], ContentKind); 8] = [
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", ContentKind::Png),
        (
            &[0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F'],
            ContentKind::Jpeg,
        ),
        (b"GIF89a\x01\x00", ContentKind::Gif),
        (b"RIFF\x24\0\0\0WEBPVP8 ", ContentKind::Webp),
        (b"\0\0\0\x18ftypmp42", ContentKind::IsoBmff),
        (b"PK\x03\x04\x14\0", ContentKind::Zip),
        (b"%PDF-1.7\n", ContentKind::Pdf),
        (&[0x28, 0xb5, 0x2f, 0xfd, 0x24], ContentKind::Zstd),
    ];
    for (bytes, want) in cases {
        assert_eq!(content_kind(bytes), Some(want), "{bytes:?}");
    }
    assert_eq!(content_kind(b"hello world"), None);
}

#[test]
fn http_response_with_gzip_body_is_explained_with_body_offset() {
    let mut body = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    body.write_all(b"payload payload payload").expect("gzip");
    let body = body.finish().expect("gzip");
    let mut msg = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
    let head_len = msg.len();
    msg.extend_from_slice(&body);
    let head = http_head(&msg).expect("head");
    assert_eq!(head.body_offset, head_len);
    assert_eq!(head.content_type, Some(&b"text/html; charset=utf-8"[..]));
    assert_eq!(head.content_encoding, Some(&b"gzip"[..]));
    assert_eq!(explain_content(&msg), Some(ContentKind::Gzip));
}

#[test]
fn http_image_type_explains_body_and_octet_stream_does_not() {
    let jpeg = b"HTTP/1.0 200 OK\r\nContent-Type: image/x-icon\r\n\r\n\x00\x01";
    assert_eq!(explain_content(jpeg), Some(ContentKind::DeclaredMedia));
    let mut rng = Rng(7);
    let mut opaque = b"POST /x HTTP/1.1\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    opaque.push(0x01); // no magic starts with 0x01
    opaque.extend_from_slice(&rng.bytes(63));
    assert_eq!(explain_content(&opaque), None);
}

#[test]
fn random_bytes_rarely_carry_a_content_magic() {
    let mut rng = Rng(8);
    let hits = (0..100_000)
        .filter(|_| explain_content(&rng.bytes(64)).is_some())
        .count();
    eprintln!("random buffers with a content magic: {hits} of 100000");
    assert!(hits <= 20, "{hits}");
}

#[test]
fn names_are_snake_case_and_match_serde() {
    for p in [AppProto::NetbiosNs, AppProto::DnsOverTls, AppProto::Openvpn] {
        let json = serde_json::to_string(&p).expect("json");
        assert_eq!(json, format!("\"{}\"", p.as_str()));
    }
    assert!(AppProto::Wireguard.is_encrypted());
    assert!(!AppProto::Http.is_encrypted());
}
