//! The command-line contract (DESIGN.md §4). Names, flags and output shapes here
//! are relied on by users' scripts: extend, never change.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Self-hosted breach exposure: ingest leaked dumps, find who and which passwords are exposed.
#[derive(Debug, Parser)]
#[command(name = "leakwatch", version, propagate_version = true, max_term_width = 100)]
#[command(
    after_help = "Start with `leakwatch demo`, then try `leakwatch --data leakwatch-demo/data search domain example-corp.com`."
)]
pub struct Cli {
    /// Data directory (the index). Default: $XDG_DATA_HOME/leakwatch or ~/.local/share/leakwatch
    /// (named on stderr when used). Reading commands need a directory that holds a store
    /// (`ingest` or `init` makes one); a missing, empty or foreign directory is an error.
    ///
    /// `s3://BUCKET/PREFIX` keeps the store in S3-compatible object storage (Garage,
    /// MinIO, AWS S3), reached with AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY and AWS_ALLOW_HTTP; the data key then comes from
    /// LEAKWATCH_KEY_FILE (or LEAKWATCH_KEY, LEAKWATCH_KEY_COMMAND) and the catalog from
    /// --catalog. See docs/object-storage.md.
    #[arg(long, global = true, env = "LEAKWATCH_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Catalog (keys, audit log, organizations, outbox, ingest log): a SQLite file, or
    /// `postgres://USER:PASSWORD@HOST/DB` shared by several servers (docs/postgresql.md).
    /// Default: catalog.sqlite in the data directory; required with --data s3://... for the
    /// commands that use the catalog.
    #[arg(long, global = true, env = "LEAKWATCH_CATALOG", value_name = "PATH|URL")]
    pub catalog: Option<String>,

    /// With --data s3://...: where segment bytes are cached, and the local scratch space
    /// of ingest. Default: $XDG_CACHE_HOME/leakwatch or ~/.cache/leakwatch.
    #[arg(long, global = true, env = "LEAKWATCH_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// With --data s3://...: the most segment bytes the cache keeps (least recently
    /// opened segments go first).
    #[arg(long, global = true, env = "LEAKWATCH_CACHE_SIZE", default_value = "8GiB", value_name = "SIZE", value_parser = parse_size)]
    pub cache_size: u64,

    /// Whether `--data` was given on the command line (not from the
    /// environment): set by `main`, for the commands it does not apply to.
    #[arg(skip)]
    pub data_on_command_line: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest dump files into a breach (created on first use).
    ///
    /// Formats are detected from content, file by file: combo lists
    /// (email:password, username:password; separators : ; | TAB), CSV/TSV with a
    /// header, NDJSON, SQL dumps (mysqldump/MariaDB INSERTs, pg_dump COPY), and
    /// stealer logs (Passwords.txt blocks, URL:login:password ULP lines).
    ///
    /// Each FILE is a file, a folder (its dumps, recursively), an archive (zip,
    /// tar, tar.gz, 7z; its members), or `-` for stdin; gzip and zstd are read
    /// transparently. Plaintext passwords are hashed in memory (SHA-1 and NTLM)
    /// and never written. Re-ingesting the same records into the same breach
    /// changes nothing.
    Ingest(IngestArgs),
    /// Look up email addresses, user names and phone numbers, a domain, or passwords.
    #[command(subcommand)]
    Search(SearchCommand),
    /// Change what the catalog shows of a breach, or remove a breach entirely.
    #[command(subcommand)]
    Breach(BreachCommand),
    /// List the breach catalog.
    Breaches {
        /// Print HIBP-style JSON (an array of breach objects).
        #[arg(long)]
        json: bool,
    },
    /// Show what the index holds and how compactly.
    Stats {
        /// Print the figures as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Check every segment's checksums; reports corruption by file and offset.
    Verify,
    /// Set damaged segments aside (into DATA/damaged/) so the rest of the index
    /// answers again, and list the breaches to ingest again.
    ///
    /// Checks every segment as `verify` does; each damaged one is moved out with
    /// a note of what it held and a new generation without it is published.
    Repair {
        /// Print what was done as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Generate a realistic sample leak, ingest it and show who is exposed.
    ///
    /// Writes generated dumps, a data directory (DIR/data) and its data key
    /// (DIR/demo.key) under DIR (default ./leakwatch-demo); nothing else is
    /// needed, and nothing outside DIR is touched. All data is synthetic. The
    /// global --data does not apply: the demo's data directory is DIR/data.
    Demo {
        /// Where to put the generated dumps and the demo data directory.
        #[arg(long, default_value = "leakwatch-demo", value_name = "DIR")]
        dir: PathBuf,
        /// Seed of the generator: the same seed gives the same leak.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Serve the HTTP API: HIBP API v3 and Pwned Passwords, over this data directory.
    ///
    /// Existing HIBP clients only change their base URL. Keys (`apikey create`)
    /// go in the hibp-api-key header; /range and the breach catalog need none.
    /// A new ingest is served without a restart; SIGTERM stops gracefully.
    Serve(ServeArgs),
    /// Move the catalog: `catalog migrate --from catalog.sqlite --to
    /// postgres://...` copies keys, organizations, directories, alert
    /// destinations, the outbox, the ingest log and the audit log into an
    /// empty PostgreSQL catalog, then verifies the audit chain there.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Create, list and revoke API keys for `serve`.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Show the audit log of the searches made with API keys; `verify` checks
    /// its hash chain.
    AuditLog(AuditLogArgs),
    /// Create the data directory and its data key, held outside it.
    ///
    /// The key goes to PATH (recorded in the directory, so later commands find
    /// it), to $LEAKWATCH_KEY_FILE, or by default to
    /// $XDG_CONFIG_HOME/leakwatch/keys/<id>.key. Any other command creates the
    /// key there on first use as well. A directory refuses any other key.
    Init {
        /// Where to keep the key ring (mode 0600).
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
    },
    /// Rotate the data key: every keyed segment is rewritten under a new key,
    /// published atomically (readers keep answering), then the old key is retired.
    ///
    /// With --audit, rotate the audit key instead: new audit rows are chained
    /// and their searched values hashed under a new key; the switch is a row of
    /// the chain, and the old key stays in the ring to check the older rows.
    Rekey {
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Rotate the audit log's key, not the data key (nothing is rewritten).
        #[arg(long)]
        audit: bool,
    },
    /// Import outside data: Have I Been Pwned's Pwned Passwords download.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Organizations: their domains, their directory of accounts and their alert
    /// destinations, kept in the catalog.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Audit an organization's directory against the whole leak corpus, most
    /// urgent first.
    ///
    /// Per enabled account: whether its current password is the very one leaked
    /// for that account (credential stuffing works on it today, and in which
    /// breaches), stealer-log sightings (the device is infected), how often its
    /// current password was seen (your dumps and Pwned Passwords), accounts
    /// sharing one password, empty passwords, and the breaches its address is
    /// in. Password findings are those of the last `org import` (the NT hashes
    /// are never kept); address findings are looked up now. Disabled accounts
    /// are left aside. Exit 0 if any account is exposed, 1 if none is. Audited.
    Audit(AuditArgs),
    /// Force a password change at next logon for the exposed accounts of an
    /// organization's directory. A dry run unless --apply.
    ///
    /// An enabled account is reset when its current password is the very one
    /// leaked for it (in which breaches), when a stealer log holds its address
    /// (the device is infected; looked up now), or, with --include-common,
    /// when its current password was seen in the corpus at all. With --apply:
    /// on OpenLDAP (ppolicy overlay) `pwdReset: TRUE`, on Active Directory
    /// `pwdLastSet: 0`, for a directory imported with --ldap (give the same
    /// --ldap, --bind-dn and --password-file, with write access); for any other
    /// identity provider, or with --reset-list, a CSV or JSON list to hand it.
    /// Each reset is a row of the audit log, with the OS user who ran it.
    /// Disabled accounts are left aside. Exit 0 if any account is (or would
    /// be) reset, 1 if none needs it, 2 on error.
    Reset(ResetArgs),
    /// Mirror a Pwned Passwords range API (HIBP, or another `leakwatch serve`).
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Run the jobs of distributed ingests (`ingest --distributed`) queued in the
    /// catalog: read each input part from the store's shared area, and write its
    /// sorted runs there for the ingest's commit.
    ///
    /// Every worker uses the same --data, --catalog (PostgreSQL, shared by all
    /// machines) and data key as the ingest. A job runs under a lease renewed while
    /// it runs; a worker that dies leaves its job to another once the lease runs
    /// out. See docs/distributed-ingest.md.
    Worker(WorkerArgs),
}

#[derive(Debug, Subcommand)]
pub enum BreachCommand {
    /// Remove a breach and everything it added: its accounts, domain entries,
    /// stealer-log pairs, credential records and its share of every password's
    /// count. Answers afterwards are those of a store that never ingested it;
    /// ingesting it again starts afresh. Published atomically and audited.
    Remove {
        /// The breach's name, as `leakwatch breaches` lists it.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Change the catalog fields of a breach (what `breaches` and the API show).
    ///
    /// Only the fields given change. Flags take `=true` or `=false`; alone they
    /// mean true (`--sensitive`, `--sensitive=false`). Published atomically and
    /// audited.
    Set(BreachSetArgs),
}

#[derive(Debug, Args)]
pub struct BreachSetArgs {
    /// The breach's name, as `leakwatch breaches` lists it.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Human-readable title.
    #[arg(long, value_name = "T")]
    pub title: Option<String>,
    /// Domain of the breached site.
    #[arg(long, value_name = "D")]
    pub domain: Option<String>,
    /// When the breach happened.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub breach_date: Option<String>,
    /// Description shown in the catalog (HTML allowed, as in HIBP).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Verified as a real breach (HIBP's IsVerified).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub verified: Option<bool>,
    /// Fabricated data (IsFabricated).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub fabricated: Option<bool>,
    /// Sensitive: never shown in a plain account search (IsSensitive).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sensitive: Option<bool>,
    /// Retired: kept but no longer returned in account searches (IsRetired).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub retired: Option<bool>,
    /// A spam list rather than a breach (IsSpamList).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub spam_list: Option<bool>,
    /// Collected by malware (IsMalware).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub malware: Option<bool>,
    /// Infostealer logs (IsStealerLog).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub stealer_log: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Fetch every Pwned Passwords range from a range API and publish them.
    ///
    /// All 1,048,576 ranges are fetched in parallel into DATA/sync/, each
    /// verified (format, order, Content-MD5) before it is kept. An interrupted
    /// sync resumes where it stopped; a later one revalidates each range with
    /// its ETag, so unchanged ranges cost a 304. Only once every range is in is
    /// the corpus published, replacing the previous Pwned Passwords import.
    PwnedPasswords(SyncPwnedArgs),
}

#[derive(Debug, Args)]
pub struct SyncPwnedArgs {
    /// Base URL of the range API (`/range/PREFIX` is appended), e.g.
    /// https://api.pwnedpasswords.com. https is required (the ranges become
    /// your corpus), except for a loopback address such as http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Trust only the CA certificates (PEM) in FILE for the upstream's
    /// certificate, instead of the system's roots: for a private mirror.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Allow plain http:// to a host that is not a loopback address: anyone on
    /// the network path could then add or remove hashes.
    #[arg(long)]
    pub insecure: bool,
    /// Sync the NTLM corpus (`?mode=ntlm`) instead of SHA-1.
    #[arg(long)]
    pub ntlm: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub parallel: usize,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// For testing: sync only the first 2^N prefixes.
    #[arg(long, hide = true, default_value_t = 20, value_name = "N")]
    pub prefix_bits: u32,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// Requests a minute for keys created without a limit of their own (0: no limit).
    #[arg(long, default_value_t = 600, value_name = "N")]
    pub rate_limit_per_minute: u32,
    /// Requests a minute per client address without a key (0: no limit; /range is never limited).
    #[arg(long, default_value_t = 600, value_name = "N")]
    pub anonymous_rate_limit_per_minute: u32,
    /// Seconds a request may take before it is answered 503.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub request_timeout: u64,
    /// Seconds a client may take to read an answer; one that stops reading
    /// (however many requests it sent) loses its connection.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout: u64,
    /// Open connections at once; more are closed on arrival.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub max_connections: usize,
    /// Open connections at once from one client (an IPv4 address, or an IPv6
    /// /64, which one subscriber usually holds whole); more are closed on arrival.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections_per_client: usize,
    /// The address of a reverse proxy in front of the server: on its
    /// connections, and only there, the client's address is taken from the last
    /// X-Forwarded-For entry (for rate limits), and the connection cap per client
    /// does not apply to the proxy itself.
    #[arg(long, value_name = "ADDR")]
    pub trusted_proxy: Option<std::net::IpAddr>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Space for formatted /range answers, reused until the next ingest (0: none).
    /// Popular prefixes are asked again and again; a cached one costs no formatting
    /// and is sent from the kernel's page cache (sendfile). Held in an unnamed file
    /// in the data directory's tmp/ (in memory if that is not writable).
    #[arg(long, default_value = "256MiB", value_name = "SIZE", value_parser = parse_size)]
    pub range_cache: u64,
    /// Who gets the counts of this organization's own dumps on /range, added
    /// to the imported Pwned Passwords': anyone (anonymous: every own-dump
    /// password's digest and count, to anyone who can reach the port), callers
    /// with a valid hibp-api-key (key: others get the Pwned Passwords alone),
    /// or nobody (off).
    #[arg(long, value_enum, default_value_t = RangeOwnDumpsArg::Anonymous, value_name = "WHO")]
    pub range_own_dumps: RangeOwnDumpsArg,
    /// The delay before an undelivered alert is tried again; it doubles on
    /// each failure, with jitter, up to --alert-retry-cap (e.g. 500ms, 5s).
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    pub alert_retry_base: std::time::Duration,
    /// The longest delay between two attempts of an alert.
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = parse_duration)]
    pub alert_retry_cap: std::time::Duration,
    /// How long an alert is tried before it is given up on (logged, and
    /// counted in `org show`).
    #[arg(long, default_value = "3d", value_name = "DURATION", value_parser = parse_duration)]
    pub alert_retry_for: std::time::Duration,
    /// How long the lease that lets one server at a time deliver alerts
    /// lasts unrenewed: with several servers on one catalog, how long alerts
    /// wait when the server delivering them dies.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub alert_lease: std::time::Duration,
    /// How often the delivering server renews that lease (and the others try
    /// to take it); shorter than --alert-lease.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub alert_lease_renew: std::time::Duration,
    /// With a PostgreSQL catalog: how often this server exchanges its keys'
    /// rate-limit usage with the other servers, so that a key's limit holds
    /// across all of them (docs/postgresql.md gives the bound).
    #[arg(long, default_value = "250ms", value_name = "DURATION", value_parser = parse_duration)]
    pub rate_limit_sync: std::time::Duration,
    /// Catalog connections the web dashboard's views share (default: two per
    /// core, 2 to 8); a view waits for one when all are in use.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub catalog_pool: Option<u64>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    leakwatch_alert::retry::parse_duration(text)
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Copy a SQLite catalog into a new PostgreSQL one (docs/postgresql.md).
    Migrate {
        /// The SQLite catalog (DATA/catalog.sqlite).
        #[arg(long, value_name = "PATH")]
        from: std::path::PathBuf,
        /// The PostgreSQL catalog: an empty database (its tables are made).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RangeOwnDumpsArg {
    Anonymous,
    Key,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key; it is printed once, alone on the last line of stdout.
    Create {
        /// A name for the key, shown in listings and the audit log.
        #[arg(long, value_name = "N")]
        name: String,
        /// admin and analyst search everything; domain only its --domain list.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A verified domain of the key (repeat for several; required for role domain).
        #[arg(long = "domain", value_name = "D")]
        domains: Vec<String>,
        /// Requests a minute for this key (0: no limit; default: the server's).
        #[arg(long, value_name = "N")]
        rate_limit: Option<u32>,
    },
    /// List every key (never the secrets).
    List {
        /// One JSON object per key.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; a running server refuses it within a second.
    Revoke {
        /// The key's name, as `apikey list` shows it.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Analyst,
    Domain,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditLogArgs {
    #[command(subcommand)]
    pub command: Option<AuditLogCommand>,
    /// One JSON object per search.
    #[arg(long)]
    pub json: bool,
    /// Only searches made with this key.
    #[arg(long, value_name = "NAME")]
    pub key: Option<String>,
    /// Only searches for this account (matched by its keyed hash).
    #[arg(long, value_name = "ADDRESS")]
    pub account: Option<String>,
    /// Only searches for this domain.
    #[arg(long, value_name = "D")]
    pub domain: Option<String>,
    /// Only the last N searches.
    #[arg(long, value_name = "N")]
    pub last: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum AuditLogCommand {
    /// Check the log's hash chain: exit 0 if intact, 2 naming the first row
    /// that was changed, inserted or removed.
    Verify {
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add an organization with its email domains.
    Add {
        /// The organization's name: ASCII letters, digits, '-', '_' or '.'.
        #[arg(value_name = "NAME")]
        name: String,
        /// Its email domains (one or more; the first gives an address to
        /// directory accounts that have none, as pwdump files' `DOMAIN\user`).
        #[arg(long = "domain", value_name = "D", required = true, num_args = 1..)]
        domains: Vec<String>,
    },
    /// List the organizations.
    List {
        /// One JSON object per organization.
        #[arg(long)]
        json: bool,
    },
    /// Show an organization: domains, directory import, alert destinations.
    Show {
        /// The organization's name.
        #[arg(value_name = "NAME")]
        name: String,
        /// Print it as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove an organization with its directory and alert destinations.
    Remove {
        /// The organization's name.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Import the organization's directory of accounts, replacing the previous one.
    ///
    /// From FILE: CSV with a header row naming `email`, `username`, `nt_hash`
    /// (any order, either case; the hash column is optional; `disabled` or
    /// `enabled` columns mark disabled accounts), or pwdump / secretsdump lines
    /// (`DOMAIN\user:rid:lmhash:nthash:::`, ` (status=Disabled)` honoured).
    ///
    /// Or from a live OpenLDAP or Active Directory with --ldap URL --base DN:
    /// `mail`, `uid` / `sAMAccountName`, the disabled state (AD:
    /// userAccountControl's ACCOUNTDISABLE bit; OpenLDAP: an administrative
    /// ppolicy lock, pwdAccountLockedTime 000001010000Z, an expired
    /// shadowExpire, or nsAccountLock), the entry's DN (for `reset`) and
    /// `sambaNTPassword` when the server gives it; read in pages, so AD's
    /// 1,000-entry limit truncates nothing. The server's kind is detected from
    /// its rootDSE and recorded.
    ///
    /// Each account's current NT hash is checked against the store now and then
    /// dropped: the catalog keeps a keyed hash of it and what was found, never
    /// the hash. Machine accounts (`NAME$`) and password-history lines are left
    /// out; malformed lines (entries, over LDAP) are counted by reason. Audited.
    Import(OrgImportArgs),
    /// Send the organization's new exposures to a webhook or a mailbox, or
    /// list, remove or test its destinations.
    ///
    /// After each new generation (ingest, import, sync, breach remove/set) the
    /// exposures new for the organization (an address of its domains or an
    /// account of its directory in a breach or a stealer log, never alerted
    /// before) are batched, one batch per generation, and a running `leakwatch
    /// serve` delivers them, retrying with backoff. What the organization is
    /// exposed by when its first destination is added is recorded, not sent
    /// (`leakwatch audit --org` reports it). A webhook is a signed POST
    /// (docs/alerts.md); secrets are kept sealed and never printed.
    Alert(OrgAlertArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["webhook", "email", "list", "remove", "test"])))]
pub struct OrgAlertArgs {
    /// The organization's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Add a webhook: https (plain http only to a loopback address, or with
    /// --insecure). Needs --secret or --secret-file.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// The secret the webhook's deliveries are signed with (HMAC-SHA256; at
    /// least 16 bytes). --secret-file keeps it out of the shell's history.
    #[arg(long, value_name = "S", requires = "webhook", conflicts_with = "secret_file")]
    pub secret: Option<String>,
    /// Read the webhook's secret from FILE (its first line).
    #[arg(long, value_name = "FILE", requires = "webhook")]
    pub secret_file: Option<PathBuf>,
    /// Add a mail recipient; needs --smtp.
    #[arg(long, value_name = "ADDR", requires = "smtp")]
    pub email: Option<String>,
    /// The mail relay: smtp://[USER[:PASSWORD]@]HOST[:PORT] (STARTTLS required,
    /// port 587 by default) or smtps://... (TLS from the start, port 465).
    /// Plain SMTP only to a loopback address, or with --insecure.
    #[arg(long, value_name = "URL", requires = "email")]
    pub smtp: Option<String>,
    /// Read the relay's password from FILE (its first line) rather than the URL.
    #[arg(long, value_name = "FILE", requires = "smtp")]
    pub smtp_password_file: Option<PathBuf>,
    /// Trust the CA certificate in FILE (PEM) for the relay's TLS, besides
    /// the system's roots: a relay with a private CA.
    #[arg(long, value_name = "FILE", requires = "smtp")]
    pub smtp_ca_file: Option<PathBuf>,
    /// The mails' sender (default: leakwatch@ the recipient's domain).
    #[arg(long, value_name = "ADDR", requires = "email")]
    pub from: Option<String>,
    /// Allow a webhook over plain http, or a relay without TLS, to a host
    /// that is not this machine: alerts then cross the network in clear.
    #[arg(long)]
    pub insecure: bool,
    /// List the destinations with their recent batches.
    #[arg(long)]
    pub list: bool,
    /// Remove the destination with this id (`--list` shows ids), with its
    /// undelivered batches.
    #[arg(long, value_name = "ID")]
    pub remove: Option<i64>,
    /// Send a test batch (one made-up exposure) to every destination now,
    /// outside the outbox, and say how each answered.
    #[arg(long)]
    pub test: bool,
    /// Print the result as JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OrgImportArgs {
    /// The organization's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The directory file, or `-` for stdin (or --ldap URL instead).
    #[arg(value_name = "FILE", required_unless_present = "ldap", conflicts_with = "ldap")]
    pub file: Option<String>,
    /// The file's format (default: detected from its first line).
    #[arg(long, value_enum, conflicts_with = "ldap")]
    pub format: Option<DirectoryFormatArg>,
    #[command(flatten)]
    pub ldap: LdapArgs,
    /// With --ldap: the search base, e.g. ou=people,dc=corp,dc=example.
    #[arg(long, value_name = "DN", requires = "ldap", required_unless_present = "file")]
    pub base: Option<String>,
    /// With --ldap: the search filter (default: AD
    /// `(&(objectCategory=person)(objectClass=user))`; OpenLDAP
    /// `(|(objectClass=inetOrgPerson)(objectClass=posixAccount)(objectClass=sambaSamAccount))`).
    #[arg(long, value_name = "FILTER", requires = "ldap")]
    pub filter: Option<String>,
    /// Print the import summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// How to reach an LDAP directory (OpenLDAP or Active Directory) and bind to it.
#[derive(Debug, Clone, Default, Args)]
pub struct LdapArgs {
    /// The directory server: `ldap://HOST[:PORT]` (upgraded with StartTLS unless
    /// --no-starttls) or `ldaps://HOST[:PORT]`.
    #[arg(long, value_name = "URL")]
    pub ldap: Option<String>,
    /// Bind as this DN (or, on AD, user@domain); anonymous without it. The
    /// password is read from --password-file or $LEAKWATCH_LDAP_PASSWORD,
    /// never from the command line.
    #[arg(long, value_name = "DN", requires = "ldap")]
    pub bind_dn: Option<String>,
    /// The file holding the bind password (its first line; mode 0600 advised).
    #[arg(long, value_name = "FILE", requires = "bind_dn")]
    pub password_file: Option<PathBuf>,
    /// Trust the CA certificate(s) in this PEM file (a private CA), besides the
    /// system's.
    #[arg(long, value_name = "PEM", requires = "ldap")]
    pub ca_file: Option<PathBuf>,
    /// On an ldap:// URL, stay in plaintext instead of StartTLS: the bind
    /// password and every record cross the network in clear.
    #[arg(long, requires = "ldap")]
    pub no_starttls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectoryFormatArg {
    /// CSV (or `;`/TAB separated) with a header row.
    Csv,
    /// pwdump / impacket secretsdump `user:rid:lmhash:nthash:::` lines.
    Pwdump,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The organization to audit.
    #[arg(long, value_name = "NAME")]
    pub org: String,
    /// One JSON object per directory account, most urgent first (disabled
    /// accounts last, marked "disabled": true).
    #[arg(long, conflicts_with_all = ["csv", "html"])]
    pub json: bool,
    /// CSV with a header row, one row per directory account.
    #[arg(long, conflicts_with = "html")]
    pub csv: bool,
    /// Write one self-contained HTML report (summary, a chart of exposures by
    /// breach date, the exposed accounts) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The organization whose directory to act on.
    #[arg(long, value_name = "NAME")]
    pub org: String,
    /// Do it: without it nothing is changed and nothing is written, only shown.
    #[arg(long)]
    pub apply: bool,
    /// Also reset accounts whose current password is anywhere in the corpus
    /// (your dumps or Pwned Passwords), not only leaked for the account itself.
    #[arg(long)]
    pub include_common: bool,
    /// One JSON object per account to reset.
    #[arg(long)]
    pub json: bool,
    /// Write the accounts to reset to FILE (`-`: stdout) for another identity
    /// provider, instead of changing an LDAP directory. Written with --apply.
    #[arg(long, value_name = "FILE", conflicts_with = "ldap")]
    pub reset_list: Option<String>,
    /// The reset list's format (default: from FILE's extension, else CSV).
    #[arg(long, value_enum, requires = "reset_list")]
    pub format: Option<ResetListFormatArg>,
    #[command(flatten)]
    pub ldap: LdapArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResetListFormatArg {
    /// A header row, then `email,username,dn,reasons`.
    Csv,
    /// One JSON array of objects.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Load a Pwned Passwords download for an offline mirror.
    ///
    /// PATH is the downloader's single file (40-hex HASH:COUNT lines, 32-hex with
    /// --ntlm; LF or CRLF), a folder of PREFIX.txt range files (the downloader's
    /// per-prefix mode: 35-hex suffixes), either gzip/zstd compressed, or an
    /// archive holding the file (7z as HIBP published it, zip, tar, tar.gz); `-` is
    /// stdin. Its counts are kept apart from your own dumps' and summed with them
    /// in searches and /range; importing a newer download replaces the older one.
    PwnedPasswords(ImportPwnedArgs),
}

#[derive(Debug, Args)]
pub struct ImportPwnedArgs {
    /// The download holds NTLM hashes (the downloader's -n mode).
    #[arg(long)]
    pub ntlm: bool,
    /// Memory for sorting input that does not come sorted (e.g. 64MiB, 1GiB).
    #[arg(long, default_value = "1GiB", value_name = "SIZE", value_parser = parse_size)]
    pub memory_budget: u64,
    /// Print the import report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The download: a file, a folder of PREFIX.txt files, an archive, or `-`.
    #[arg(value_name = "PATH")]
    pub path: String,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Breach name: ASCII letters and digits, as HIBP names breaches.
    #[arg(long, value_name = "NAME")]
    pub breach: String,
    /// Human-readable title (default: the name).
    #[arg(long, value_name = "T")]
    pub title: Option<String>,
    /// Domain of the breached site.
    #[arg(long, value_name = "D")]
    pub domain: Option<String>,
    /// When the breach happened (default: today).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub breach_date: Option<String>,
    /// Description shown in the catalog (HTML allowed, as in HIBP).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Input format; `auto` detects it from the content of each file.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// Memory for sort buffers; beyond it sorted runs spill to disk (e.g. 64MiB, 1GiB).
    #[arg(long, default_value = "1GiB", value_name = "SIZE", value_parser = parse_size)]
    pub memory_budget: u64,
    /// Also write the ingest report (per-file counts, rejections with sample lines) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Give columns (CSV, NDJSON keys, SQL columns) their roles, over what their
    /// names and contents say: ROLE=COLUMN pairs separated by commas, e.g.
    /// `account=login_name,hash=pw,skip=notes`. Roles: email, username, account
    /// (an address or a user name, by each value), phone, password (plaintext),
    /// hash, ip, name, skip (not read). COLUMN is a name (case-insensitive) or,
    /// for a CSV without a header row (then `--format csv`), a number from 1.
    /// A column that is not there is an error.
    #[arg(long, value_name = "ROLE=COL,...", value_parser = parse_columns)]
    pub columns: Option<leakwatch_ingest::ColumnOverrides>,
    /// Hand the work to `leakwatch worker` processes on any machine: the records
    /// are split into --partitions disjoint key ranges, one job each, queued in
    /// the catalog; each job reads every input, keeps its share and writes its
    /// share's segments; the ingest waits for them and publishes the result as
    /// one generation, with the same answers as a local ingest. Needs a store
    /// every worker reaches (--data s3://...) and a shared catalog (--catalog
    /// postgres://...).
    #[arg(long)]
    pub distributed: bool,
    /// With --distributed: how many jobs (key ranges) to split the records into;
    /// as many as there are workers to run them. Every job reads every input, so
    /// more jobs than workers repeat the reading. Default: one per --job-size of
    /// input, at most 8.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub partitions: Option<u32>,
    /// With --distributed and no --partitions: one job for about this much input.
    #[arg(long, default_value = "256MiB", value_name = "SIZE", value_parser = parse_size)]
    pub job_size: u64,
    /// With --distributed: how long the ingest's own lease lasts unrenewed (the
    /// workers start no job of an ingest whose lease ran out).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub ingest_lease: std::time::Duration,
    /// Dumps to read: files, folders, archives (zip, tar, tar.gz, 7z), or `-`
    /// for stdin; plain, gzip or zstd.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// How long a job's lease lasts unrenewed: how long a dead worker's job
    /// waits before another worker takes it over.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub lease: std::time::Duration,
    /// How often a worker with nothing to do asks for a job.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    pub poll: std::time::Duration,
    /// Exit after finding no job for this long (default: run until stopped).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub exit_when_idle: Option<std::time::Duration>,
    /// Local scratch space for a job's input and runs (default: `worker` in the
    /// data directory, or in --cache-dir for a store in object storage).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Detect each file's format from its content.
    Auto,
    /// Combo lists: `account:password` lines (separators : ; | TAB).
    Combo,
    /// CSV or TSV with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// A SQL dump (mysqldump / MariaDB INSERTs, pg_dump COPY).
    Sql,
    /// Infostealer `URL:login:password` lines.
    Stealer,
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Which breaches each address appears in. Exit 0 if any was found, 1 if none.
    Email {
        /// One JSON object per input: {"account": ..., "breaches": [...]}.
        #[arg(long)]
        json: bool,
        /// Addresses, or `-` to read one per line from stdin.
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
    },
    /// Which breaches each user name or phone number appears in (accounts
    /// without an address, which HIBP's breachedaccount also finds). Exit 0 if
    /// any was found, 1 if none.
    Account {
        /// One JSON object per input: {"account": ..., "breaches": [...]}.
        #[arg(long)]
        json: bool,
        /// User names or phone numbers, or `-` to read one per line from stdin.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Every exposed alias of a domain and its breaches (HIBP's breacheddomain shape).
    Domain {
        /// One JSON object: {"alias": ["Breach", ...], ...}.
        #[arg(long)]
        json: bool,
        /// The domain, e.g. example-corp.com (IDNs in either form).
        #[arg(value_name = "DOMAIN")]
        domain: String,
    },
    /// How often passwords appear (distinct breach/account/password records).
    ///
    /// Without --hash, values are plaintext passwords, hashed in memory and never
    /// stored. With --hash, values are hex hashes of either case.
    Password {
        /// Values are hashes of this kind instead of plaintexts.
        #[arg(long, value_enum)]
        hash: Option<HashArg>,
        /// One JSON object per value: {"hash": "UPPERHEX", "count": N}.
        #[arg(long)]
        json: bool,
        /// Also show where the count comes from: your own dumps and the imported
        /// Pwned Passwords (JSON fields "own" and "hibp").
        #[arg(long)]
        sources: bool,
        /// Passwords or hashes, or `-` to read one per line from stdin.
        #[arg(required = true, value_name = "VALUE")]
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashArg {
    Sha1,
    Ntlm,
}

fn parse_columns(s: &str) -> Result<leakwatch_ingest::ColumnOverrides, String> {
    s.parse()
}

fn parse_size(s: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize =
        s.trim().parse().map_err(|e| format!("{s:?} is not a size like 64MiB or 1GiB: {e}"))?;
    Ok(size.as_u64())
}

fn parse_date(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let month: u32 = s.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(0);
    let day: u32 = s.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(0);
    if ok && (1..=12).contains(&month) && (1..=31).contains(&day) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a date like 2026-03-04"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_dates() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_date("2026-03-04").is_ok());
        assert!(parse_date("2026-13-04").is_err());
        assert!(parse_date("04/03/2026").is_err());
    }

    /// Every subcommand and every argument a user can see says what it is for.
    #[test]
    fn every_subcommand_and_argument_has_help() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "leakwatch", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
