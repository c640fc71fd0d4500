//! `chatbox-client`: the ChatBox terminal client. See `--help`.

use std::process::ExitCode;

use chatbox_client::error::{ClientError, exit};
use chatbox_client::failover::Target;
use chatbox_client::known_servers::{self, Trust};
use chatbox_client::menu::{self, read_password};
use chatbox_client::otp_source::{OtpSource, SECRET_ENV};
use chatbox_client::plain;
use chatbox_client::qr_view::QrStyle;
use chatbox_client::servers::ServerList;
use clap::{ArgAction, Parser, Subcommand};

const AFTER_HELP: &str = "\
Without a subcommand, shows the menu: 1) Register  2) Login  3) Quit.

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
  4  registration or login refused (name taken, wrong password or code, invalid name)
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
    /// before and after the subcommand, the later one counts.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT[,HOST:PORT...]",
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
    Register {
        /// User name (1-32 of a-z 0-9 _ . -, starting with a letter).
        #[arg(long)]
        user: String,
    },
    /// Log in and chat: the chat screen, or with --plain one line per event for scripts.
    ///
    /// Password from CHATBOX_PASSWORD, else asked without echo. With --plain each stdin line is
    /// sent (/commands as in /help; other lines said in the current room, #lobby after login)
    /// and each event is printed as one line: login, motd, say, action, private, notice,
    /// presence, names, topic, history, room, whois, info, error, pong, bye; and when the
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

fn run(cli: &Cli) -> Result<(), ClientError> {
    let servers = ServerList::parse(&cli.server)?;
    let trust = trust(cli)?;
    let secret = OtpSource::from_env()?;
    let no_color = cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let style = if no_color {
        QrStyle::Plain
    } else {
        QrStyle::Color
    };
    match &cli.command {
        None => menu::run(&servers, &trust, style, secret),
        Some(Command::Register { user }) => {
            let password = read_password("Password (not shown): ")?;
            plain::register(&servers, &trust, user, &password, style)
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
            plain::chat(target, otp.as_deref(), secret)
        }
        Some(Command::Chat {
            user,
            otp,
            plain: false,
        }) => menu::login_and_chat(&servers, &trust, Some(user), otp.as_deref(), secret),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("chatbox-client: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
