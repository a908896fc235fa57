from fastcron.cli import main

raise SystemExit(main())
