//! Ports for tests that need a connection refused. Only the `it` test binary includes this.

/// A port on 127.0.0.1 where every connection is refused, for as long as the returned socket
/// lives: bound but not listening. A port bound and released at once is not safe: another
/// test's server, started meanwhile in the same process, may be given it (it happened: a
/// test expecting "unreachable" listed a stand-in's connectors).
pub fn refused_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}
