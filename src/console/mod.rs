//! The console (being written; submodules are declared once they compile).
