//! `used_memory` of a Redis server, read with `INFO memory` over a plain RESP connection (no
//! client library: this is the only command the load generator sends).

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// `redis://[[user]:password@]host[:port][/db]` -> (`host:port`, user, password).
fn parse_url(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("not a redis:// URL: {url}"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:6379")
    };
    let (user, password) = match userinfo.map(|u| u.split_once(':').unwrap_or(("", u))) {
        Some((u, p)) => (
            Some(u.to_string()).filter(|u| !u.is_empty()),
            Some(p.to_string()).filter(|p| !p.is_empty()),
        ),
        None => (None, None),
    };
    Ok((hostport, user, password))
}

fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
    }
    out
}

async fn reply(reader: &mut BufReader<TcpStream>) -> Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+') => Ok(line[1..].to_string()),
        Some(b'-') => bail!("redis: {}", &line[1..]),
        Some(b'$') => {
            let len: usize = line[1..].parse().context("bad bulk length")?;
            let mut data = vec![0; len + 2];
            reader.read_exact(&mut data).await?;
            data.truncate(len);
            Ok(String::from_utf8_lossy(&data).into_owned())
        }
        _ => bail!("unexpected redis reply {line:?}"),
    }
}

/// Bytes Redis reports in `used_memory`.
pub async fn used_memory(url: &str) -> Result<u64> {
    let (addr, user, password) = parse_url(url)?;
    let tcp = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("cannot connect to redis at {addr}"))?;
    let mut reader = BufReader::new(tcp);
    if let Some(p) = &password {
        let auth = match &user {
            Some(u) => command(&["AUTH", u, p]),
            None => command(&["AUTH", p]),
        };
        reader.get_mut().write_all(&auth).await?;
        reply(&mut reader).await?;
    }
    reader
        .get_mut()
        .write_all(&command(&["INFO", "memory"]))
        .await?;
    let info = reply(&mut reader).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .context("no used_memory in INFO")?
        .trim()
        .parse()
        .context("bad used_memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("redis://127.0.0.1:7000/").unwrap(),
            ("127.0.0.1:7000".into(), None, None)
        );
        assert_eq!(
            parse_url("redis://:pw@h/0").unwrap(),
            ("h:6379".into(), None, Some("pw".into()))
        );
        assert_eq!(
            parse_url("redis://u:pw@h:1").unwrap(),
            ("h:1".into(), Some("u".into()), Some("pw".into()))
        );
        assert!(parse_url("http://h").is_err());
    }
}
