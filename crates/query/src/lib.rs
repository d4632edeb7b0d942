//! LogQL: parser, AST and the log pipeline stages. Pure.
