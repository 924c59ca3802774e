//! The floor: the least work any verify must do. Start, open the SQLite file, read one row by
//! key, run one argon2id verification at the stored parameters (m=1024 KiB, t=1, p=1), record
//! the use with one autocommit UPDATE, exit. Same journal (WAL) and last-used durability
//! (synchronous=NORMAL) as autheona's verify, and the same argon2 call (`secret::verify`, with
//! its working memory on a huge page), so that the floor has every trick verify has.
//!
//!     floor setup PATH      make the one-row database (secret: "floor-secret")
//!     floor PATH            verify the secret in FLOOR_SECRET; exit 0 when it matches

use autheona::secret::{self, Secret};
use rusqlite::Connection;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [setup, path] = args.as_slice()
        && setup == "setup"
    {
        let conn = Connection::open(path).expect("open");
        let hash = secret::hash(&Secret::new("floor-secret".into())).expect("hash");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL, last_used INTEGER);",
        )
        .expect("schema");
        conn.execute(
            "INSERT OR REPLACE INTO tokens (id, hash) VALUES ('floor', ?1)",
            [hash],
        )
        .expect("row");
        return;
    }
    let path = args.first().expect("usage: floor PATH");
    let secret = Secret::new(std::env::var("FLOOR_SECRET").unwrap_or_default());
    let conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("pragma");
    let hash: String = conn
        .query_row("SELECT hash FROM tokens WHERE id = 'floor'", [], |row| {
            row.get(0)
        })
        .expect("row");
    let valid = secret::verify(&secret, &hash);
    if valid {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        conn.execute("UPDATE tokens SET last_used = ?1 WHERE id = 'floor'", [now])
            .expect("update");
    }
    std::process::exit(if valid { 0 } else { 1 });
}
