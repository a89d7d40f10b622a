//! The help overlay: every key bound in the current context and everywhere, as the keymap
//! actually has them (user overrides included), grouped by command.

use crate::console::app::AppState;
use crate::console::keymap::{Command, KeyContext, Keymap};
use crate::console::theme::Theme;
use crate::console::widgets::centered;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

pub struct HelpView;

/// (keys, description, command) of a context, one entry per command, in keymap order.
pub fn entries(keymap: &Keymap, context: KeyContext) -> Vec<(String, String, Command)> {
    let mut out: Vec<(String, String, Command)> = Vec::new();
    for b in keymap.bindings(context) {
        match out.iter_mut().find(|(_, _, c)| *c == b.command) {
            Some(entry) => {
                entry.0.push_str(", ");
                entry.0.push_str(&b.key.to_string());
            }
            None => out.push((b.key.to_string(), b.desc.clone(), b.command)),
        }
    }
    out
}

impl HelpView {
    pub fn lines(
        &self,
        keymap: &Keymap,
        context: KeyContext,
        read_only: bool,
        theme: &Theme,
    ) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        let mut contexts = vec![context];
        if !matches!(
            context,
            KeyContext::Global | KeyContext::Editor | KeyContext::Confirm
        ) {
            contexts.push(KeyContext::Global);
        }
        for ctx in contexts {
            lines.push(Line::styled(ctx.title().to_string(), theme.label));
            let entries = entries(keymap, ctx);
            if entries.is_empty() {
                lines.push(Line::styled("  (no keys of its own)", theme.dim));
            }
            for (keys, desc, command) in entries {
                let disabled = read_only && command.is_mutating();
                let mut spans = vec![
                    Span::styled(format!("  {keys:<18} "), theme.key),
                    Span::styled(desc, if disabled { theme.dim } else { theme.text }),
                ];
                if disabled {
                    spans.push(Span::styled(" (read-only profile)", theme.dim));
                }
                lines.push(Line::from(spans));
            }
            lines.push(Line::from(""));
        }
        lines.push(Line::styled(
            "Keys come from keymap.toml beside the config file, laid over the defaults.",
            theme.dim,
        ));
        lines
    }

    pub fn render(
        &self,
        frame: &mut Frame,
        area: Rect,
        state: &AppState,
        context: KeyContext,
        scroll: u16,
        theme: &Theme,
    ) {
        let lines = self.lines(&state.keymap, context, state.profile.read_only, theme);
        let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
        let dialog = centered(area, 76.min(area.width.saturating_sub(2)), height);
        frame.render_widget(Clear, dialog);
        let max = (lines.len() as u16).saturating_sub(dialog.height.saturating_sub(2));
        let block = Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(theme.border_focus)
            .title(Span::styled(" Help ", theme.title))
            .title_bottom(Line::styled(" esc closes ", theme.dim).right_aligned());
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .scroll((scroll.min(max), 0)),
            dialog,
        );
    }
}
