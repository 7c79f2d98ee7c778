//! `talky-mock`: every provider mock on one port, for running `talky serve` (and
//! `talky-loadgen`) without real provider accounts. Point Talky at it with
//! `TALKY_STT__BASE_URL=ws://HOST:PORT`, `TALKY_LLM__BASE_URL=http://HOST:PORT/v1` and
//! `TALKY_TTS__BASE_URL=http://HOST:PORT`, each with the mock's API key.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use talky_testkit::{cartesia, deepgram, openai};

#[derive(Parser, Debug)]
#[command(
    name = "talky-mock",
    about = "Protocol-faithful mocks of Deepgram (v1 /v1/listen and Flux /v2/listen), an OpenAI-compatible chat endpoint (/v1/chat/completions) and Cartesia TTS (/tts/websocket, /tts/bytes), all on one port.",
    after_help = "Example:\n  talky-mock --listen 127.0.0.1:9100 --stt-latency-ms 150 --llm-ttft-ms 200 --tts-ttfb-ms 120\n  TALKY_STT__BASE_URL=ws://127.0.0.1:9100 TALKY_STT__API_KEY=test-key \\\n  TALKY_LLM__BASE_URL=http://127.0.0.1:9100/v1 TALKY_LLM__API_KEY=test-key \\\n  TALKY_TTS__BASE_URL=http://127.0.0.1:9100 TALKY_TTS__API_KEY=test-key talky serve"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// API key every mock expects (Deepgram `Token`, OpenAI `Bearer`, Cartesia `X-API-Key`).
    #[arg(long, default_value = "test-key")]
    api_key: String,
    /// STT: delay before every message the mock sends (time to first event).
    #[arg(long, default_value_t = 0)]
    stt_latency_ms: u64,
    /// STT: silence after speech that ends a caller turn.
    #[arg(long, default_value_t = 500)]
    stt_end_silence_ms: u32,
    /// STT: transcripts handed out per turn, in order (repeat the flag). Empty = empty text.
    #[arg(long = "transcript")]
    transcripts: Vec<String>,
    /// LLM: time to first token.
    #[arg(long, default_value_t = 0)]
    llm_ttft_ms: u64,
    /// LLM: delay between tokens.
    #[arg(long, default_value_t = 0)]
    llm_inter_token_ms: u64,
    /// LLM: the reply to every request.
    #[arg(
        long,
        default_value = "Thanks for taking my call. We help small teams book more appointments. Would you like to hear more?"
    )]
    reply: String,
    /// TTS: time to first audio byte.
    #[arg(long, default_value_t = 0)]
    tts_ttfb_ms: u64,
    /// TTS: audio produced per character of text.
    #[arg(long, default_value_t = 60)]
    tts_ms_per_char: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let stt = deepgram::router(deepgram::MockDeepgramConfig {
        api_key: args.api_key.clone(),
        transcripts: args.transcripts.clone(),
        end_silence_ms: args.stt_end_silence_ms,
        latency: Duration::from_millis(args.stt_latency_ms),
        idle_timeout: Some(Duration::from_secs(10)),
        record_audio: false,
        ..Default::default()
    });
    let llm = openai::router(openai::MockLlmConfig {
        api_key: Some(args.api_key.clone()),
        default_reply: openai::MockReply::text(args.reply.clone()),
        time_to_first_token: Duration::from_millis(args.llm_ttft_ms),
        inter_token_delay: Duration::from_millis(args.llm_inter_token_ms),
        ..Default::default()
    });
    let tts = cartesia::router(cartesia::MockCartesiaConfig {
        api_key: args.api_key.clone(),
        ms_per_char: args.tts_ms_per_char,
        first_audio_delay: Duration::from_millis(args.tts_ttfb_ms),
        ..Default::default()
    });
    let app = stt.merge(llm).merge(tts);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "talky-mock listening (deepgram /v1/listen /v2/listen, openai /v1/chat/completions, cartesia /tts/websocket /tts/bytes)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
