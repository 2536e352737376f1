"""Format writers and readers: CNTK map files, .lst, RecordIO, class lists, class folders."""
