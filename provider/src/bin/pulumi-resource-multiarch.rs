fn main() -> anyhow::Result<()> {
    multiarch::cli::main()
}
