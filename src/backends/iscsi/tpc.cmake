# The third-party copy initiator of the iSCSI backend (tpc_codec.h, remote_copy.h): pure
# codecs of the remote array's pages and commands, and the copy legs run through a
# ScsiChannel. Included from this folder's CMakeLists.txt.
add_library(ferry_iscsi_tpc ${CMAKE_CURRENT_LIST_DIR}/tpc_codec.cc
            ${CMAKE_CURRENT_LIST_DIR}/remote_copy.cc)
target_link_libraries(ferry_iscsi_tpc PUBLIC ferry_block)

# Tests check the encoders against Ferry's own target-side decoders and run copies against an
# in-process Ferry SCSI target (tests may use any layer).
ferry_test(ferry_iscsi_tpc_test
           SOURCES ${CMAKE_CURRENT_LIST_DIR}/tpc_codec_test.cc
                   ${CMAKE_CURRENT_LIST_DIR}/remote_copy_test.cc
           LIBS ferry_iscsi_tpc ferry_scsi ferry_backend_ram ferry_backend_faulty)
