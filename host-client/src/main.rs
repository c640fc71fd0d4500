//! `chatbox-client`: the ChatBox terminal client. See `--help`.

use std::process::ExitCode;

use chatbox_client::error::{ClientError, exit};
use chatbox_client::failover::Target;
use chatbox_client::invite::{self, Destination};
use chatbox_client::known_servers::{self, Trust};
use chatbox_client::menu::{self, read_password};
use chatbox_client::otp_source::{OtpSource, SECRET_ENV};
use chatbox_client::passwd;
use chatbox_client::qr_view::QrStyle;
use chatbox_client::{plain, plain_chat};
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

const AFTER_HELP: &str = "\
Without a subcommand, shows the menu: 1) Register  2) Login  3) Quit. Register asks for an
invite (a link or its code) when the server registers by invite only.

Invite links: `chatbox://HOST:PORT/?key=SHA256:<fingerprint>&invite=<token>`, as an operator's
`chatbox-server invite create` prints them (`%2B`/`%2F` or plain `+`/`/` in the key). `join LINK`
opens the menu's registration for the link's server; `register --invite LINK --user U` does it
in scriptable form (a bare token with --server instead of a link). A link's key is pinned: the
server must answer with exactly that key, even on first contact (else exit 3, both fingerprints
shown, nothing sent); it is then recorded in known_servers. `--server 'chatbox://HOST:PORT/?key=…'`
(quote it: `&` and `?` are special to the shell) pins the same way for any command.

Several servers (nodes of one cluster): --server A:1,B:2 or --server A:1 --server B:2. They are
tried in the order given (3 s connect and 5 s handshake limit each) until one answers; the
error names each address and why it failed.

Reconnecting: when the connection breaks during chat (node killed, reset, end of stream without
a Bye), the client tries the next address, then the others in turn (growing pauses, up to 30 s),
logs in again, rejoins its rooms and sends again every line the server had not acknowledged,
except chat lines it finds were stored (their copy came back, or they are in the history):
each line is delivered once, never lost. Logging in again needs a fresh one-time code: set
CHATBOX_TOTP_SECRET to the Base32 secret (the secret=... of the otpauth URI) and the client
computes codes itself (it is never printed). Without it the chat screen asks for a code, and
--plain exits 2 saying why. A Bye from the server (shutdown, kick, ban) does not reconnect.
With CHATBOX_TOTP_SECRET set, chat --otp may be left out.

Server keys are trusted on first use: the first key seen for HOST:PORT is recorded in
$CHATBOX_HOME/known_servers (default ~/.config/chatbox/known_servers), one line per server,
`HOST:PORT SHA256:<base64>`. A different key later is refused (exit 3) and both fingerprints are
shown; if the server's key really changed, delete its line or pin the new key with --server-key.

QR codes: Unicode half blocks, 4-module quiet zone, forced black on white with ANSI colours
(a block is a dark module). With --no-color (or NO_COLOR set) there are no escape sequences and
a block is a LIGHT module, so the code scans on a dark-background terminal; on a light
background use the colour mode.

Exit codes:
  0  success
  1  usage error or local I/O problem (terminal, stdin, known_servers file)
  2  server unreachable, handshake failed, or connection lost (and not logged in again)
  3  server key mismatch (possible impersonation)
  4  registration or login refused (name taken, wrong password or code, invalid name, an
     invite missing, garbled, expired, used up or revoked), or a password change or
     re-enrolment refused
  5  server busy or full (every address): try again later
  6  chat --plain: input ended and was delivered, but the server refused some lines for good
     (too long, not permitted, no such user or room, muted…; each shown as an `error` line)

Pacing: the server announces its rate limit at login and the client sends no faster (one
acknowledgement per line); lines piped in faster simply wait, and one the server still puts
off (rate_limited) is sent again.";

/// ChatBox terminal client: encrypted chat (Noise NX handshake, per-record keys) with password + TOTP login.
#[derive(Debug, Parser)]
#[command(name = "chatbox-client", version, after_help = AFTER_HELP)]
struct Cli {
    /// Server address; several (comma-separated or repeated) are tried in turn. Given both
    /// before and after the subcommand, the later one counts. A `chatbox://HOST:PORT/?key=…`
    /// link instead (alone) names one server and pins its key.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT[,HOST:PORT...]|LINK",
        default_value = "127.0.0.1:6001",
        env = "CHATBOX_SERVER",
        value_delimiter = ',',
        action = ArgAction::Append
    )]
    server: Vec<String>,

    /// Accept only this server key (as the server prints it at start); known_servers is then
    /// neither read nor written.
    #[arg(long, global = true, value_name = "SHA256:<base64>")]
    server_key: Option<String>,

    /// Draw the QR code without colours (light modules as '█', for dark-background terminals).
    /// Also when the NO_COLOR environment variable is set and not empty.
    #[arg(long, global = true)]
    no_color: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register an account (scriptable).
    ///
    /// Prints the otpauth URI on its own line (stdout), reads the confirmation code from one
    /// line of stdin, prints the scratch codes one per line (stdout). Password from
    /// CHATBOX_PASSWORD, else asked without echo. Prompts go to stderr (and the QR code, when
    /// stderr is a terminal).
    ///
    /// With --invite (an invite link, or its bare token with --server) the registration carries
    /// the invite, and a link's server key is pinned. An invite refused (missing on an
    /// invite-only server, garbled, expired, used up, revoked) exits 4 before any code is asked.
    Register {
        /// User name (1-32 of a-z 0-9 _ . -, starting with a letter).
        #[arg(long)]
        user: String,
        /// The invite: a chatbox:// link (it also names the server and pins its key) or the bare
        /// token (43 characters of A-Z a-z 0-9 _ -) for --server.
        #[arg(long, value_name = "LINK|TOKEN")]
        invite: Option<String>,
    },
    /// Open an invite link: the menu's registration on the link's server (its key pinned),
    /// then the menu (log in with choice 2).
    Join {
        /// The invite link, `chatbox://HOST:PORT/?key=SHA256:…&invite=…` (quote it).
        link: String,
    },
    /// Change the password (scriptable): logs in, sends the change, says goodbye.
    ///
    /// Current password from CHATBOX_PASSWORD, the new one from CHATBOX_NEW_PASSWORD (else both
    /// asked without echo, the new one twice). The one-time code (--otp, or computed from
    /// CHATBOX_TOTP_SECRET) logs in and confirms the change on that session; a second --otp
    /// confirms it instead. Prints `passwd N`: the user's N other sessions were closed.
    Passwd {
        /// User name.
        #[arg(long)]
        user: String,
        /// One-time code (TOTP or scratch); a second one, if given, confirms the change.
        #[arg(long, action = ArgAction::Append)]
        otp: Vec<String>,
    },
    /// Log in and chat: the chat screen, or with --plain one line per event for scripts.
    ///
    /// Password from CHATBOX_PASSWORD, else asked without echo. With --plain each stdin line is
    /// sent (/commands as in /help; other lines said in the current room, #lobby after login)
    /// and each event is printed as one line: login, motd, say, action, private, notice,
    /// presence, names, topic, history, room, whois, info, error, pong, bye, session and
    /// `sessions end` (/sessions), revoked (/sessions revoke ID|others), passwd (/passwd [CODE],
    /// new password from CHATBOX_NEW_PASSWORD), reenrol, reenrolled and scratch (/reenrol [CODE],
    /// then /reenrol confirm CODE with a code of the new secret); and when the
    /// connection is lost, `reconnecting to ADDR` (each address tried) and `reconnected to
    /// ADDR`, followed by the new login's events. Lines go out at the pace the server's rate
    /// limit allows. At end of input the client waits until the server has processed
    /// everything (across reconnects), then exits 0, or 6 if the server refused a line for good.
    Chat {
        /// User name.
        #[arg(long)]
        user: String,
        /// One-time code (TOTP or scratch code); asked for if missing. With --plain it is
        /// needed unless CHATBOX_TOTP_SECRET is set.
        #[arg(long)]
        otp: Option<String>,
        /// Scriptable mode: stdin lines in, one line per event out, no screen.
        #[arg(long)]
        plain: bool,
    },
}

fn trust(cli: &Cli) -> Result<Trust, ClientError> {
    match &cli.server_key {
        Some(key) if known_servers::is_fingerprint(key.trim()) => {
            Ok(Trust::Pinned(key.trim().to_owned()))
        }
        Some(key) => Err(ClientError::Usage(format!(
            "--server-key {key:?} is not a fingerprint like SHA256:<43 Base64 characters>"
        ))),
        None => known_servers::default_path()
            .map(Trust::File)
            .map_err(ClientError::Usage),
    }
}

fn run(cli: &Cli, explicit_server: bool) -> Result<(), ClientError> {
    let base_trust = trust(cli)?;
    let dest = invite::resolve_servers(&cli.server, &base_trust)?;
    let servers = dest.servers.clone();
    let trust = dest.trust.clone();
    let secret = OtpSource::from_env()?;
    let no_color = cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let style = if no_color {
        QrStyle::Plain
    } else {
        QrStyle::Color
    };
    match &cli.command {
        None => menu::run(&servers, &trust, style, secret),
        Some(Command::Register { user, invite }) => {
            let dest = match invite {
                Some(arg) => invite::for_invite(arg, &servers, explicit_server, &trust)?,
                None => dest,
            };
            plain::register(&dest, user, style)
        }
        Some(Command::Join { link }) => {
            if !invite::is_link(link) {
                return Err(ClientError::BadInvite(format!(
                    "join takes an invite link (chatbox://HOST:PORT/?key=…&invite=…), not {:?}",
                    link.chars().take(80).collect::<String>()
                )));
            }
            let parsed = chatbox_core::link::Link::parse(link)
                .map_err(|e| ClientError::BadInvite(format!("the invite link is garbled: {e}")))?;
            let dest: Destination = invite::from_link(&parsed, &base_trust)?;
            menu::join(&dest, style, secret)
        }
        Some(Command::Passwd { user, otp }) => {
            let target = Target {
                servers,
                trust,
                user: user.clone(),
                password: String::new(),
            };
            passwd::run(target, otp, secret)
        }
        Some(Command::Chat {
            user,
            otp,
            plain: true,
        }) => {
            if otp.is_none() && secret.is_none() {
                return Err(ClientError::Usage(format!(
                    "chat --plain needs --otp CODE (or {SECRET_ENV} to compute codes)"
                )));
            }
            let password = read_password("Password (not shown): ")?;
            let target = Target {
                servers,
                trust,
                user: user.clone(),
                password,
            };
            plain_chat::chat(target, otp.as_deref(), secret)
        }
        Some(Command::Chat {
            user,
            otp,
            plain: false,
        }) => menu::login_and_chat(&servers, &trust, Some(user), otp.as_deref(), secret),
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Whether --server (or CHATBOX_SERVER) was given, not the default: an invite link for
    // another server is then refused.
    let explicit_server = matches!(
        matches.value_source("server"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    ) || matches.subcommand().is_some_and(|(_, sub)| {
        matches!(
            sub.value_source("server"),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    });
    match run(&cli, explicit_server) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("chatbox-client: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
